import { Module } from '@nestjs/common';
import { ACCOUNT_AUTHORIZER } from '../core/subscriptions/ports';
import { AuthService } from './auth.service';
import { CrossbarClient } from './crossbar.client';

/** Token validation and account scope, decided by Crossbar (Kazoo's REST API). */
@Module({
  providers: [
    CrossbarClient,
    AuthService,
    { provide: ACCOUNT_AUTHORIZER, useExisting: AuthService },
  ],
  exports: [AuthService, ACCOUNT_AUTHORIZER],
})
export class AuthModule {}
