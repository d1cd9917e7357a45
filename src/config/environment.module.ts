import { DynamicModule, Global, Module } from '@nestjs/common';
import { Environment } from './environment';
import { NodeIdentity } from './node-identity';

/** Makes the validated `Environment` and this node's identity injectable everywhere. */
@Global()
@Module({})
export class EnvironmentModule {
  static forRoot(environment: Environment): DynamicModule {
    return {
      module: EnvironmentModule,
      providers: [
        { provide: Environment, useValue: environment },
        { provide: NodeIdentity, useValue: new NodeIdentity() },
      ],
      exports: [Environment, NodeIdentity],
    };
  }
}
