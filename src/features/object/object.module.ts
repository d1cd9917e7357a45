import { Module } from '@nestjs/common';
import { ObjectFamily } from './object.family';

/** Kazoo document changes: `object.<ACTION>.<TYPE>` and 3.x `<ACTION>.<DB>.<TYPE>.<ID>`. */
@Module({ providers: [ObjectFamily] })
export class ObjectModule {}
