import { DynamicModule, Global, Module } from '@nestjs/common';
import { Clock } from '../core/clock';
import { Environment } from './environment';
import { NodeIdentity } from './node-identity';

/** Makes the validated `Environment`, this node's identity and the clock injectable everywhere. */
@Global()
@Module({})
export class EnvironmentModule {
  static forRoot(
    environment: Environment,
    clock: Clock = new Clock(),
    node: NodeIdentity = new NodeIdentity(),
  ): DynamicModule {
    return {
      module: EnvironmentModule,
      providers: [
        { provide: Environment, useValue: environment },
        { provide: NodeIdentity, useValue: node },
        { provide: Clock, useValue: clock },
      ],
      exports: [Environment, NodeIdentity, Clock],
    };
  }
}
