import { Module } from '@nestjs/common';
import { ConferenceFamily } from './conference.family';

/**
 * Kazoo conference events: `conference.event.<CONF_ID>[.<CALL_ID>]`, sent to 3.x clients as
 * `participants_event`.
 */
@Module({ providers: [ConferenceFamily] })
export class ConferenceModule {}
