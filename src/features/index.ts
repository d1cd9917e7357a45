import type { Type } from '@nestjs/common';
import { CallModule } from './call/call.module';
import { ConferenceModule } from './conference/conference.module';
import { FaxModule } from './fax/fax.module';
import { ObjectModule } from './object/object.module';
import { PresenceModule } from './presence/presence.module';

/** The event families Blackhole ships with. Add your own module next to them in `AppModule.register`. */
export const defaultFeatures: Type[] = [
  CallModule,
  ConferenceModule,
  FaxModule,
  ObjectModule,
  PresenceModule,
];
