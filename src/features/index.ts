import type { Type } from '@nestjs/common';
import { CallModule } from './call/call.module';
import { ObjectModule } from './object/object.module';

/** The event families Blackhole ships with. Add your own module next to them in `AppModule.register`. */
export const defaultFeatures: Type[] = [CallModule, ObjectModule];
