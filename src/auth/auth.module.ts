import { Module } from '@nestjs/common';
import { ACCOUNT_AUTHORIZER, ACCOUNT_DIRECTORY } from '../core/subscriptions/ports';
import { AuthService } from './auth.service';
import { CrossbarClient } from './crossbar.client';

/** Token validation, account scope and account facts, decided by Crossbar (Kazoo's REST API). */
@Module({
  providers: [
    CrossbarClient,
    AuthService,
    { provide: ACCOUNT_AUTHORIZER, useExisting: AuthService },
    { provide: ACCOUNT_DIRECTORY, useExisting: AuthService },
  ],
  exports: [AuthService, CrossbarClient, ACCOUNT_AUTHORIZER, ACCOUNT_DIRECTORY],
})
export class AuthModule {}
