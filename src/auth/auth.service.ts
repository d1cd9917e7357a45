import { createHash } from 'node:crypto';
import { Inject, Injectable, Logger, Optional } from '@nestjs/common';
import { Environment } from '../config/environment';
import {
  AccountForbiddenError,
  InvalidAccountError,
  InvalidBindingError,
  RateLimitedError,
  TokenInvalidError,
} from '../core/errors';
import { KeyedBuckets } from '../core/limits/keyed-buckets';
import { TokenBucket } from '../core/limits/token-bucket';
import { ALL_ACCOUNTS } from '../core/families/event-family';
import { secretTag } from '../core/secret-tag';
import type {
  AccountAuthorizer,
  AccountDirectory,
  Requester,
  TokenIdentity,
} from '../core/subscriptions/ports';
import { type AccountAccess, CrossbarClient, type TokenInfo } from './crossbar.client';
import { type Clock, TtlCache } from './ttl-cache';

/** Injection token for the clock the caches use; tests move time instead of sleeping. */
export const AUTH_CLOCK = Symbol('AUTH_CLOCK');

/** Client addresses whose lookup budgets are kept at once (see `KeyedBuckets`). */
const MAX_TRACKED_ADDRESSES = 100_000;

type Verdict<T> = { ok: true; value: T } | { ok: false };

/**
 * Token checks against Crossbar with a positive cache (at most `AUTH_CACHE_TTL_S`, never past
 * the token's `exp`), a short negative cache for refusals, and shared in-flight requests.
 * Temporary Crossbar failures propagate and are never cached.
 */
@Injectable()
export class AuthService implements AccountAuthorizer, AccountDirectory {
  private readonly logger = new Logger(AuthService.name);
  private readonly identities: TtlCache<Verdict<TokenInfo>>;
  private readonly grants: TtlCache<AccountAccess>;
  private readonly positiveTtlMs: number;
  private readonly negativeTtlMs: number;
  private readonly lookupBudgets = new WeakMap<Requester, TokenBucket>();
  private readonly lookupBurst: number;
  private readonly lookupsPerSecond: number;
  private readonly addressBudgets: KeyedBuckets;

  constructor(
    private readonly crossbar: CrossbarClient,
    env: Environment,
    @Optional() @Inject(AUTH_CLOCK) private readonly now: Clock = Date.now,
  ) {
    this.positiveTtlMs = env.AUTH_CACHE_TTL_S * 1000;
    this.negativeTtlMs = env.AUTH_NEGATIVE_TTL_S * 1000;
    this.lookupBurst = env.CROSSBAR_LOOKUPS_BURST;
    this.lookupsPerSecond = env.CROSSBAR_LOOKUPS_PER_MIN / 60;
    this.addressBudgets = new KeyedBuckets(
      env.CROSSBAR_IP_LOOKUPS_BURST,
      env.CROSSBAR_IP_LOOKUPS_PER_MIN / 60,
      MAX_TRACKED_ADDRESSES,
      now,
    );
    this.identities = new TtlCache(env.AUTH_CACHE_MAX, now);
    this.grants = new TtlCache(env.AUTH_CACHE_MAX, now);
  }

  /** Lookups of both caches (token checks and account grants) so far, read by `/metrics`. */
  cacheCounts(): { hits: number; misses: number } {
    return {
      hits: this.identities.hits + this.grants.hits,
      misses: this.identities.misses + this.grants.misses,
    };
  }

  async authenticate(token: string, requester?: Requester): Promise<TokenIdentity> {
    const info = await this.tokenInfo(token, requester);
    return { accountId: info.accountId };
  }

  async authorize(token: string, accountId: string, requester?: Requester): Promise<TokenIdentity> {
    const info = await this.tokenInfo(token, requester);
    const identity = { accountId: info.accountId, exp: info.exp };
    if (info.accountId === accountId) return identity;
    if (accountId === ALL_ACCOUNTS) {
      // Kazoo 4.3 (bh_authz_subscribe): `*` only for a superduper admin, as Crossbar's document
      // of the token's own account says.
      const own = await this.access(token, info, info.accountId, requester);
      if (!own.superduperAdmin) throw new InvalidAccountError('unauthorized wildcard account id');
      return identity;
    }
    await this.access(token, info, accountId, requester);
    return identity;
  }

  /**
   * Crossbar's answer now, not the cache's; the answers replace cached ones, so a revoked token
   * is refused to the next subscribe too. Single flight is the caller's (one re-check per
   * token and account at a time).
   */
  async recheck(token: string, accountId: string): Promise<TokenIdentity> {
    const tokenKey = tokenDigest(token);
    let info: TokenInfo;
    try {
      const reported = await this.crossbar.tokenInfo(token);
      info = { ...reported, exp: reported.exp ?? jwtExpiry(token) };
    } catch (error) {
      if (error instanceof TokenInvalidError) {
        this.identities.set(tokenKey, { ok: false }, this.negativeTtlMs);
      }
      throw error;
    }
    this.identities.set(tokenKey, { ok: true, value: info }, this.positiveTtl(info));
    if (info.exp !== undefined && info.exp * 1000 <= this.now()) throw new TokenInvalidError();
    const identity = { accountId: info.accountId, exp: info.exp };
    // Crossbar's token check names the token's own account: nothing more to ask.
    if (info.accountId === accountId) return identity;
    // `*` stays allowed only while the token's own account is the superduper admins'.
    const target = accountId === ALL_ACCOUNTS ? info.accountId : accountId;
    let access: AccountAccess;
    try {
      access = await this.crossbar.account(token, target);
    } catch (error) {
      if (error instanceof TokenInvalidError) {
        this.identities.set(tokenKey, { ok: false }, this.negativeTtlMs);
      }
      throw error;
    }
    this.grants.set(
      `${tokenKey}:${target}`,
      access,
      access.allowed ? this.positiveTtl(info) : this.negativeTtlMs,
    );
    if (!access.allowed || (accountId === ALL_ACCOUNTS && !access.superduperAdmin)) {
      this.logger.debug(`token ${secretTag(token)} lost account ${accountId}`);
      throw new AccountForbiddenError();
    }
    return identity;
  }

  async realmOf(token: string, accountId: string): Promise<string> {
    const access = await this.access(token, await this.tokenInfo(token), accountId);
    if (access.realm === undefined) {
      throw new InvalidBindingError(`account ${accountId} has no realm`);
    }
    return access.realm;
  }

  /** Crossbar's answer to "may this token read that account?", cached like token checks. */
  private async access(
    token: string,
    info: TokenInfo,
    accountId: string,
    requester?: Requester,
  ): Promise<AccountAccess & { allowed: true }> {
    const key = `${tokenDigest(token)}:${accountId}`;
    if (!this.grants.has(key)) this.spendLookup(requester);
    const access = await this.grants.get(key, async () => {
      const answer = await this.crossbar.account(token, accountId);
      return { value: answer, ttlMs: answer.allowed ? this.positiveTtl(info) : this.negativeTtlMs };
    });
    if (!access.allowed) {
      this.logger.debug(`token ${secretTag(token)} refused account ${accountId}`);
      throw new AccountForbiddenError();
    }
    return access;
  }

  private async tokenInfo(token: string, requester?: Requester): Promise<TokenInfo> {
    const key = tokenDigest(token);
    if (!this.identities.has(key)) this.spendLookup(requester);
    const verdict = await this.identities.get(key, async () => {
      try {
        const reported = await this.crossbar.tokenInfo(token);
        const info = { ...reported, exp: reported.exp ?? jwtExpiry(token) };
        return { value: { ok: true, value: info }, ttlMs: this.positiveTtl(info) };
      } catch (error) {
        if (!(error instanceof TokenInvalidError)) throw error;
        this.logger.debug(`token ${secretTag(token)} refused by crossbar`);
        return { value: { ok: false }, ttlMs: this.negativeTtlMs };
      }
    });
    if (!verdict.ok) throw new TokenInvalidError();
    if (verdict.value.exp !== undefined && verdict.value.exp * 1000 <= this.now()) {
      throw new TokenInvalidError();
    }
    return verdict.value;
  }

  /**
   * A requester (a connection) may make Crossbar answer only so many questions it has not
   * answered before: a flood of unknown tokens or accounts is refused here, not sent on. Answers
   * from the cache, and loads another requester already started, cost nothing. The requester's
   * address pays too, so many connections from one address share one larger budget.
   */
  private spendLookup(requester: Requester | undefined): void {
    if (requester === undefined) return;
    let budget = this.lookupBudgets.get(requester);
    if (!budget) {
      budget = new TokenBucket(this.lookupBurst, this.lookupsPerSecond, this.now);
      this.lookupBudgets.set(requester, budget);
    }
    if (!budget.take()) throw new RateLimitedError('too many authentication lookups; retry later');
    const address = requester.clientAddress;
    if (address !== undefined && !this.addressBudgets.take(address)) {
      throw new RateLimitedError('too many authentication lookups from this address; retry later');
    }
  }

  /** Reuse a positive answer for the configured TTL, but never beyond the token's expiry. */
  private positiveTtl(info: TokenInfo): number {
    if (info.exp === undefined) return this.positiveTtlMs;
    return Math.max(0, Math.min(this.positiveTtlMs, info.exp * 1000 - this.now()));
  }
}

/** Cache key for a token: the token itself never sits in a map or a log line. */
function tokenDigest(token: string): string {
  return createHash('sha256').update(token).digest('base64url');
}

/**
 * Kazoo 4.x tokens are JWTs carrying `exp` (Unix seconds). Reading it unverified is safe here:
 * it can only shorten how long Crossbar's own verdict is reused. Legacy opaque tokens have none.
 */
function jwtExpiry(token: string): number | undefined {
  const parts = token.split('.');
  if (parts.length !== 3) return undefined;
  try {
    const claims = JSON.parse(Buffer.from(parts[1], 'base64url').toString('utf8')) as unknown;
    const exp =
      typeof claims === 'object' && claims !== null ? (claims as { exp?: unknown }).exp : undefined;
    return typeof exp === 'number' && Number.isFinite(exp) ? exp : undefined;
  } catch {
    return undefined;
  }
}
