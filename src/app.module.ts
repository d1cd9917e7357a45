import { DynamicModule, Module, Type } from '@nestjs/common';
import { AmqpModule } from './amqp/amqp.module';
import { type Environment } from './config/environment';
import { EnvironmentModule } from './config/environment.module';
import type { NodeIdentity } from './config/node-identity';
import type { Clock } from './core/clock';
import { CoreModule } from './core/core.module';
import { defaultFeatures } from './features';
import { GatewaysModule } from './gateways/gateways.module';
import { AccountWebsocketsController } from './http/account-websockets.controller';
import { HealthController } from './http/health.controller';
import { WebsocketsController } from './http/websockets.controller';
import { MetricsModule } from './metrics/metrics.module';

export interface AppOptions {
  /** The validated configuration (see `loadEnvironment`). */
  readonly environment: Environment;
  /** Event family modules; defaults to the built-in ones. Add your own here. */
  readonly features?: readonly Type[];
  /** Time source; tests pass one they control. */
  readonly clock?: Clock;
  /** This node's identity; given when something outside the module (the logger) names the node too. */
  readonly node?: NodeIdentity;
}

/** Composition root: the one place that lists every module of the application. */
@Module({})
export class AppModule {
  static register({
    environment,
    features = defaultFeatures,
    clock,
    node,
  }: AppOptions): DynamicModule {
    return {
      module: AppModule,
      imports: [
        EnvironmentModule.forRoot(environment, clock, node),
        CoreModule,
        AmqpModule,
        GatewaysModule,
        MetricsModule,
        ...features,
      ],
      controllers: [HealthController, WebsocketsController, AccountWebsocketsController],
    };
  }
}
