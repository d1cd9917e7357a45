import { Module } from '@nestjs/common';
import { PresenceFamily } from './presence.family';

/** Kazoo presence events: `presence.<dialog|update|mwi_updates>.<CALL_ID|USER>`. */
@Module({ providers: [PresenceFamily] })
export class PresenceModule {}
