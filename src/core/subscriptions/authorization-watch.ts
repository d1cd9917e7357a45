import { createHash } from 'node:crypto';
import {
  Inject,
  Injectable,
  Logger,
  OnApplicationBootstrap,
  OnApplicationShutdown,
} from '@nestjs/common';
import { Clock } from '../clock';
import { type GatewayError, TokenInvalidError, toGatewayError } from '../errors';
import { secretTag } from '../secret-tag';
import type { Subscription } from '../session';
import {
  ACCOUNT_AUTHORIZER,
  REVALIDATION_SETTINGS,
  type AccountAuthorizer,
  type RevalidationSettings,
  type TokenIdentity,
} from './ports';

/** How often the watch looks for due grants: at most this late for a re-check or an expiry. */
const TICK_MS = 1000;
/** Re-checks of one sweep run this many at a time, so thousands of tokens do not burst Crossbar. */
const PARALLEL_CHECKS = 8;

/** Told which subscriptions lost their authorization, and why; they are no longer watched. */
export type RevocationHandler = (
  subscriptions: readonly Subscription[],
  error: GatewayError,
) => void;

/** One (token, account) and the live subscriptions it authorized. */
interface Grant {
  readonly id: string;
  /** Kept once per grant, to ask Crossbar again; it never reaches a log line. */
  readonly token: string;
  readonly accountId: string;
  readonly subscriptions: Set<Subscription>;
  /** Epoch ms at which the token expires, when known. */
  expiresAt: number | undefined;
  /** Epoch ms of Crossbar's last "still allowed" (or of the subscribe that created the grant). */
  confirmedAt: number;
  nextCheckAt: number;
  /** A re-check is queued or running: single flight per grant. */
  checking: boolean;
}

/**
 * Keeps every live subscription's authorization true: the (token, account) that authorized it
 * is asked again every `AUTH_REVALIDATE_S` and dropped at the token's `exp` without asking.
 * Re-checks are shared by every subscription of the same (token, account), so 10,000 sockets on
 * 50 tokens cost 50 checks per interval. A Crossbar outage is not a revocation: subscriptions
 * keep streaming until `AUTH_OUTAGE_GRACE_S` after their last good check.
 */
@Injectable()
export class AuthorizationWatch implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger(AuthorizationWatch.name);
  private readonly grants = new Map<string, Grant>();
  private readonly grantOf = new WeakMap<Subscription, Grant>();
  private handler: RevocationHandler | undefined;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    @Inject(ACCOUNT_AUTHORIZER) private readonly authorizer: AccountAuthorizer,
    private readonly clock: Clock,
    @Inject(REVALIDATION_SETTINGS) private readonly settings: RevalidationSettings,
  ) {}

  onApplicationBootstrap(): void {
    // One timer for the node, whatever the number of subscriptions.
    this.timer = setInterval(() => {
      this.sweep().catch((error: unknown) =>
        this.logger.error(`revalidation sweep failed: ${messageOf(error)}`),
      );
    }, TICK_MS);
    this.timer.unref();
  }

  onApplicationShutdown(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  /** Sets who removes revoked subscriptions and tells their clients. */
  onRevoked(handler: RevocationHandler): void {
    this.handler = handler;
  }

  /**
   * Watches `subscription` under the token that just authorized it. A subscription already
   * watched under another token (subscribed again with a fresh one) moves to the new token.
   */
  track(subscription: Subscription, token: string, identity: TokenIdentity): void {
    const id = grantId(token, subscription.accountId);
    const current = this.grantOf.get(subscription);
    if (current && current.id !== id) this.untrack(subscription);
    let grant = this.grants.get(id);
    if (!grant) {
      const now = this.now();
      grant = {
        id,
        token,
        accountId: subscription.accountId,
        subscriptions: new Set(),
        expiresAt: undefined,
        confirmedAt: now,
        nextCheckAt: now + this.settings.intervalMs,
        checking: false,
      };
      this.grants.set(id, grant);
    }
    if (identity.exp !== undefined) grant.expiresAt = identity.exp * 1000;
    grant.subscriptions.add(subscription);
    this.grantOf.set(subscription, grant);
  }

  /** Stops watching a subscription; the last one of a grant drops the grant and its token. */
  untrack(subscription: Subscription): void {
    const grant = this.grantOf.get(subscription);
    if (!grant) return;
    this.grantOf.delete(subscription);
    grant.subscriptions.delete(subscription);
    if (grant.subscriptions.size === 0 && this.grants.get(grant.id) === grant) {
      this.grants.delete(grant.id);
    }
  }

  /** Number of distinct (token, account) pairs watched. */
  get size(): number {
    return this.grants.size;
  }

  /**
   * Revokes expired grants at once and re-checks those due; resolves when those re-checks are
   * done. Runs every second; a grant whose re-check is still running is left to it.
   */
  async sweep(): Promise<void> {
    const now = this.now();
    const due: Grant[] = [];
    for (const grant of this.grants.values()) {
      if (grant.expiresAt !== undefined && grant.expiresAt <= now) {
        this.revoke(grant, new TokenInvalidError());
      } else if (!grant.checking && grant.nextCheckAt <= now) {
        grant.checking = true;
        due.push(grant);
      }
    }
    if (due.length === 0) return;
    const queue = due.values();
    const worker = async (): Promise<void> => {
      for (const grant of queue) await this.recheck(grant);
    };
    await Promise.all(Array.from({ length: Math.min(PARALLEL_CHECKS, due.length) }, worker));
  }

  private async recheck(grant: Grant): Promise<void> {
    try {
      if (this.grants.get(grant.id) !== grant) return;
      const identity = await this.authorizer.recheck(grant.token, grant.accountId);
      const now = this.now();
      grant.confirmedAt = now;
      if (identity.exp !== undefined) grant.expiresAt = identity.exp * 1000;
      grant.nextCheckAt = now + this.settings.intervalMs;
    } catch (thrown) {
      const error = toGatewayError(thrown);
      if (!error.temporary) {
        this.revoke(grant, error);
        return;
      }
      const now = this.now();
      const graceEnds = grant.confirmedAt + this.settings.outageGraceMs;
      if (now >= graceEnds) {
        this.revoke(grant, error);
        return;
      }
      this.logger.warn(
        `token ${secretTag(grant.token)} on ${grant.accountId}: re-check failed (${messageOf(thrown)}); ` +
          `streaming on for ${Math.ceil((graceEnds - now) / 1000)} s at most`,
      );
      // Asked again in time to honour the grace exactly, not one interval after it.
      grant.nextCheckAt = Math.min(now + this.settings.intervalMs, graceEnds);
    } finally {
      grant.checking = false;
    }
  }

  private revoke(grant: Grant, error: GatewayError): void {
    // Dropped meanwhile (every subscription gone, or re-created under the same key).
    if (this.grants.get(grant.id) !== grant) return;
    this.grants.delete(grant.id);
    const subscriptions = [...grant.subscriptions];
    grant.subscriptions.clear();
    subscriptions.forEach((subscription) => this.grantOf.delete(subscription));
    this.logger.log(
      `token ${secretTag(grant.token)} on ${grant.accountId}: ${error.code}; ` +
        `dropping ${subscriptions.length} subscription(s)`,
    );
    try {
      this.handler?.(subscriptions, error);
    } catch (failure) {
      this.logger.error(`dropping revoked subscriptions failed: ${messageOf(failure)}`);
    }
  }

  private now(): number {
    return this.clock.now().getTime();
  }
}

/** The token enters the key only as a digest. */
function grantId(token: string, accountId: string): string {
  return `${createHash('sha256').update(token).digest('base64url')}\u0000${accountId}`;
}

function messageOf(error: unknown): string {
  if (error instanceof Error && 'reason' in error && typeof error.reason === 'string') {
    return error.reason;
  }
  return error instanceof Error ? error.message : String(error);
}
