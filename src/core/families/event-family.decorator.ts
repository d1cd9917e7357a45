import { DiscoveryService } from '@nestjs/core';
import type { EventFamilyOptions } from './event-family';

/**
 * Marks a provider as an event family. The provider implements `EventFamily` and marks the
 * method that describes each exchange it reads with `@ExchangeSubscription(exchange)`; the node
 * consumes every exchange once and offers each delivery to all families reading it. Families are
 * discovered at bootstrap; importing the module is all it takes to add one. A prefix (or alias)
 * claimed twice stops the boot, and so does a family that reads no exchange.
 *
 * @publicApi
 */
export const EventFamilyProvider = DiscoveryService.createDecorator<EventFamilyOptions>();
