import { Global, Module } from '@nestjs/common';
import { DiscoveryModule } from '@nestjs/core';
import { AuthModule } from '../auth/auth.module';
import { Environment } from '../config/environment';
import { EventIngress } from './events/event-ingress';
import { EventStats } from './events/event-stats';
import { FamilyRegistry } from './families/family.registry';
import { SubscriptionRegistry } from './subscriptions/subscription.registry';
import { MonthlyRollover } from './subscriptions/monthly-rollover';
import { SUBSCRIPTION_LIMITS, type SubscriptionLimits } from './subscriptions/ports';
import { SubscriptionService } from './subscriptions/subscription.service';
import { SocketListing } from './tracking/socket-listing';
import { NodeIdentity } from '../config/node-identity';

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
    {
      provide: SUBSCRIPTION_LIMITS,
      inject: [Environment],
      useFactory: (env: Environment): SubscriptionLimits => ({
        maxBindingsPerConnection: env.MAX_BINDINGS_PER_CONNECTION,
      }),
    },
    SubscriptionService,
    EventIngress,
    MonthlyRollover,
    {
      provide: SocketListing,
      inject: [SubscriptionRegistry, NodeIdentity],
      useFactory: (registry: SubscriptionRegistry, node: NodeIdentity) =>
        new SocketListing(registry, node.publicId),
    },
  ],
  exports: [
    AuthModule,
    FamilyRegistry,
    SubscriptionRegistry,
    SubscriptionService,
    EventIngress,
    EventStats,
    MonthlyRollover,
    SocketListing,
  ],
})
export class CoreModule {}
