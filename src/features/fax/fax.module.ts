import { Module } from '@nestjs/common';
import { FaxFamily } from './fax.family';

/** Kazoo fax events: `fax.status.<FAX_ID>` and `fax.object.<ACTION>` (fax documents). */
@Module({ providers: [FaxFamily] })
export class FaxModule {}
