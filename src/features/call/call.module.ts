import { Module } from '@nestjs/common';
import { CallFamily } from './call.family';

/** Kazoo call events: `call.<EVENT>.<CALL_ID>`. */
@Module({ providers: [CallFamily] })
export class CallModule {}
