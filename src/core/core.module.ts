import { Global, Module } from '@nestjs/common';
import { DiscoveryModule } from '@nestjs/core';
import { AuthModule } from '../auth/auth.module';
import { Environment } from '../config/environment';
import { EventIngress } from './events/event-ingress';
import { EventStats } from './events/event-stats';
import { FamilyRegistry } from './families/family.registry';
import { SubscriptionRegistry } from './subscriptions/subscription.registry';
import { MonthlyRollover } from './subscriptions/monthly-rollover';
import {
  REVALIDATION_SETTINGS,
  SUBSCRIPTION_LIMITS,
  type RevalidationSettings,
  type SubscriptionLimits,
} from './subscriptions/ports';
import { AuthorizationWatch } from './subscriptions/authorization-watch';
import { SubscriptionService } from './subscriptions/subscription.service';
import { SocketListing } from './tracking/socket-listing';
import { REPLAY_SETTINGS, type ReplaySettings } from './replay/ports';
import { ReplayService } from './replay/replay.service';
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
        maxBrokerKeysPerAccount: env.MAX_BROKER_KEYS_PER_ACCOUNT,
      }),
    },
    {
      provide: REVALIDATION_SETTINGS,
      inject: [Environment],
      useFactory: (env: Environment): RevalidationSettings => ({
        intervalMs: env.AUTH_REVALIDATE_S * 1000,
        outageGraceMs: env.AUTH_OUTAGE_GRACE_S * 1000,
      }),
    },
    AuthorizationWatch,
    SubscriptionService,
    {
      provide: REPLAY_SETTINGS,
      inject: [Environment],
      useFactory: (env: Environment): ReplaySettings => ({
        windowMs: env.REPLAY_WINDOW_S * 1000,
        concurrency: env.REPLAY_CONCURRENCY,
        maxWaiting: env.REPLAY_MAX_WAITING,
      }),
    },
    ReplayService,
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
    // Re-exported so `/health` can report the Crossbar client's load.
    AuthModule,
    FamilyRegistry,
    SubscriptionRegistry,
    SubscriptionService,
    ReplayService,
    EventIngress,
    EventStats,
    MonthlyRollover,
    SocketListing,
  ],
})
export class CoreModule {}
