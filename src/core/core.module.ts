import { Global, Module } from '@nestjs/common';
import { DiscoveryModule } from '@nestjs/core';
import { AuthModule } from '../auth/auth.module';
import { EventIngress } from './events/event-ingress';
import { EventStats } from './events/event-stats';
import { FamilyRegistry } from './families/family.registry';
import { SubscriptionRegistry } from './subscriptions/subscription.registry';
import { MonthlyRollover } from './subscriptions/monthly-rollover';
import { SubscriptionService } from './subscriptions/subscription.service';

/**
 * The transport-free heart: families, subscriptions and the event path. Global so that family
 * modules and transports inject `EventIngress` and `SubscriptionService` without wiring.
 */
@Global()
@Module({
  imports: [DiscoveryModule, AuthModule],
  providers: [
    FamilyRegistry,
    { provide: SubscriptionRegistry, useFactory: () => new SubscriptionRegistry() },
    { provide: EventStats, useFactory: () => new EventStats() },
    SubscriptionService,
    EventIngress,
    MonthlyRollover,
  ],
  exports: [
    FamilyRegistry,
    SubscriptionRegistry,
    SubscriptionService,
    EventIngress,
    EventStats,
    MonthlyRollover,
  ],
})
export class CoreModule {}
