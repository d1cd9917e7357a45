import { Module } from '@nestjs/common';
import { SkeletonFamily } from './skeleton.family';

/**
 * The copy-me family module. Not among the default features: add it (or your copy) with
 * `AppModule.register({ environment, features: [...defaultFeatures, SkeletonModule] })`.
 */
@Module({ providers: [SkeletonFamily] })
export class SkeletonModule {}
