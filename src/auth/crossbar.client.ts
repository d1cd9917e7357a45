import { Injectable } from '@nestjs/common';
import { Environment } from '../config/environment';
import { AuthUnavailableError, RateLimitedError, TokenInvalidError } from '../core/errors';
import { ConcurrencyGate, GateFullError, type GateLoad } from './concurrency-gate';
import { CrossbarStats } from './crossbar-stats';

export interface TokenInfo {
  readonly accountId: string;
  /** Unix seconds after which Crossbar will refuse the token, when it says so. */
  readonly exp?: number;
}

interface CrossbarEnvelope {
  readonly status?: unknown;
  readonly data?: {
    readonly account_id?: unknown;
    readonly exp?: unknown;
    readonly realm?: unknown;
    readonly superduper_admin?: unknown;
  };
}

/** Whether a token may read an account, and what Crossbar told about it when it may. */
export type AccountAccess =
  | { readonly allowed: false }
  | {
      readonly allowed: true;
      readonly realm?: string;
      /** The account is Kazoo's system administrators' (`superduper_admin: true`). */
      readonly superduperAdmin: boolean;
    };

/**
 * The two Crossbar calls Blackhole needs, made with the client's own token. It only speaks
 * HTTP and maps answers to outcomes: 401 is an invalid token, 5xx, timeouts and network
 * failures are temporary.
 *
 * At most `CROSSBAR_MAX_CONCURRENT` requests are in flight from the node; up to
 * `CROSSBAR_MAX_QUEUED` more wait in arrival order, and past that a request is refused with
 * `rate_limited` without reaching Crossbar. `CROSSBAR_TIMEOUT_MS` bounds a request from the
 * moment it is asked for, waiting included, so a slow Crossbar cannot pile up old requests.
 */
@Injectable()
export class CrossbarClient {
  private readonly baseUrl: string;
  private readonly timeoutMs: number;
  private readonly gate: ConcurrencyGate;
  /** Requests made, by endpoint and outcome, and how long they took (read by `/metrics`). */
  readonly stats = new CrossbarStats();

  constructor(env: Environment) {
    this.baseUrl = env.CROSSBAR_URL.replace(/\/+$/, '');
    this.timeoutMs = env.CROSSBAR_TIMEOUT_MS;
    this.gate = new ConcurrencyGate(env.CROSSBAR_MAX_CONCURRENT, env.CROSSBAR_MAX_QUEUED);
  }

  /** Requests in flight and waiting now, and requests refused as busy since boot. */
  get load(): GateLoad {
    return this.gate.load;
  }

  /** `GET /token_auth`: who does this token belong to? */
  async tokenInfo(token: string): Promise<TokenInfo> {
    const response = await this.get('/token_auth', token);
    if (response.status === 401 || response.status === 403) throw new TokenInvalidError();
    if (response.status !== 200) throw unavailable(`token_auth answered ${response.status}`);
    const accountId = response.body?.data?.account_id;
    if (typeof accountId !== 'string' || accountId === '') {
      throw unavailable('token_auth answered without data.account_id');
    }
    const exp = response.body?.data?.exp;
    return { accountId, exp: typeof exp === 'number' ? exp : undefined };
  }

  /**
   * `GET /accounts/{id}`: Crossbar answers 200 only to the account itself, its ancestors
   * (resellers) and super-admins, which is exactly Kazoo's hierarchy rule.
   */
  async account(token: string, accountId: string): Promise<AccountAccess> {
    const response = await this.get(`/accounts/${encodeURIComponent(accountId)}`, token);
    if (response.status === 200) {
      const realm = response.body?.data?.realm;
      return {
        allowed: true,
        realm: typeof realm === 'string' && realm !== '' ? realm : undefined,
        superduperAdmin: response.body?.data?.superduper_admin === true,
      };
    }
    if (response.status === 401) throw new TokenInvalidError();
    if (response.status === 403 || response.status === 404) return { allowed: false };
    throw unavailable(`accounts answered ${response.status}`);
  }

  private async get(
    path: string,
    token: string,
  ): Promise<{ status: number; body: CrossbarEnvelope | undefined }> {
    const signal = AbortSignal.timeout(this.timeoutMs);
    try {
      return await this.gate.run(async () => {
        // Timed from the moment the request leaves, not from its wait at the gate.
        const startedMs = performance.now();
        let response: Response;
        try {
          response = await fetch(`${this.baseUrl}${path}`, {
            headers: { 'X-Auth-Token': token, Accept: 'application/json' },
            signal,
          });
        } catch (error) {
          this.stats.record(path, isTimeout(error) ? 'timeout' : 'unreachable', startedMs);
          throw error;
        }
        this.stats.record(path, response.status, startedMs);
        let body: CrossbarEnvelope | undefined;
        try {
          body = (await response.json()) as CrossbarEnvelope;
        } catch {
          body = undefined;
        }
        return { status: response.status, body };
      }, signal);
    } catch (error) {
      if (error instanceof GateFullError) {
        throw new RateLimitedError('authentication service busy; retry later');
      }
      throw unavailable(describeFetchError(error));
    }
  }
}

function unavailable(reason: string): AuthUnavailableError {
  return new AuthUnavailableError(reason);
}

function isTimeout(error: unknown): boolean {
  return (error as { name?: unknown } | null)?.name === 'TimeoutError';
}

/** Duck-typed: fetch's errors may come from another realm, where `instanceof Error` fails. */
function describeFetchError(error: unknown): string {
  const { name, cause } = (error ?? {}) as { name?: unknown; cause?: { code?: unknown } };
  if (name === 'TimeoutError') return 'crossbar timed out';
  return `crossbar unreachable${typeof cause?.code === 'string' ? ` (${cause.code})` : ''}`;
}
