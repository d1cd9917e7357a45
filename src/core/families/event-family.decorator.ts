import { DiscoveryService } from '@nestjs/core';
import type { EventFamilyOptions } from './event-family';

/**
 * Marks a provider as an event family. The provider implements `EventFamily` and consumes its
 * exchanges with `@RabbitSubscribe(familySubscription(exchange))` handlers that hand each
 * message to `EventIngress.ingest`. Families are discovered at bootstrap; importing the module
 * is all it takes to add one. A prefix (or alias) claimed twice stops the boot.
 *
 * @publicApi
 */
export const EventFamilyProvider = DiscoveryService.createDecorator<EventFamilyOptions>();
