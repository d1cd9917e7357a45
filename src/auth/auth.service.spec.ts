import { Logger, type LoggerService } from '@nestjs/common';
import { loadEnvironment } from '../config/environment';
import {
  AccountForbiddenError,
  AuthUnavailableError,
  GatewayError,
  InvalidAccountError,
  RateLimitedError,
  TokenInvalidError,
} from '../core/errors';
import { FakeCrossbar } from '../../test/support/fake-crossbar';
import { AuthService } from './auth.service';
import { CrossbarClient } from './crossbar.client';

const CACHE_TTL_S = 60;
const NEGATIVE_TTL_S = 5;

/** A clock the test moves by hand; it only drives the caches (Crossbar checks real time). */
class ManualClock {
  private current = Date.now();
  readonly now = (): number => this.current;
  advance(ms: number): void {
    this.current += ms;
  }
}

async function rejectionOf(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error('expected the promise to reject');
}

/** Keeps what AuthService logs, so tests can check that no token ever reaches a log line. */
class CollectingLogger implements LoggerService {
  readonly lines: string[] = [];
  log(message: unknown): void {
    this.lines.push(String(message));
  }
  error(message: unknown): void {
    this.lines.push(String(message));
  }
  warn(message: unknown): void {
    this.lines.push(String(message));
  }
  debug(message: unknown): void {
    this.lines.push(String(message));
  }
  verbose(message: unknown): void {
    this.lines.push(String(message));
  }
}

const logs = new CollectingLogger();

/** Every error a client or a log could see must be free of the token. */
function expectNoToken(error: unknown, token: string): void {
  expect(error).toBeInstanceOf(GatewayError);
  const gatewayError = error as GatewayError;
  expect(gatewayError.message).not.toContain(token);
  expect(gatewayError.stack ?? '').not.toContain(token);
  if (error instanceof AuthUnavailableError) expect(error.reason).not.toContain(token);
  expect(JSON.stringify(gatewayError)).not.toContain(token);
  for (const line of logs.lines) expect(line).not.toContain(token);
}

describe('AuthService against a Crossbar stand-in', () => {
  let crossbar: FakeCrossbar;
  let clock: ManualClock;

  function newService(overrides: Record<string, string> = {}): AuthService {
    const env = loadEnvironment({
      CROSSBAR_URL: crossbar.url,
      AUTH_CACHE_TTL_S: String(CACHE_TTL_S),
      AUTH_NEGATIVE_TTL_S: String(NEGATIVE_TTL_S),
      CROSSBAR_TIMEOUT_MS: '2000',
      ...overrides,
    });
    return new AuthService(new CrossbarClient(env), env, clock.now);
  }

  const tokenAuthHits = (): number => crossbar.hitsOf('/v2/token_auth');
  const accountHits = (accountId: string): number => crossbar.hitsOf(`/v2/accounts/${accountId}`);

  beforeAll(() => {
    Logger.overrideLogger(logs);
  });

  beforeEach(async () => {
    logs.lines.length = 0;
    crossbar = await FakeCrossbar.start();
    clock = new ManualClock();
  });

  afterEach(async () => {
    crossbar.setFault(undefined);
    await crossbar.stop();
  });

  describe('positive cache', () => {
    it('reuses a valid answer within AUTH_CACHE_TTL_S and asks again after it', async () => {
      const account = crossbar.addAccount();
      const token = crossbar.issueToken(account);
      const auth = newService();

      await expect(auth.authenticate(token)).resolves.toEqual({ accountId: account });
      expect(tokenAuthHits()).toBe(1);

      clock.advance(CACHE_TTL_S * 1000 - 1);
      await expect(auth.authenticate(token)).resolves.toEqual({ accountId: account });
      await expect(auth.authorize(token, account)).resolves.toMatchObject({ accountId: account });
      expect(tokenAuthHits()).toBe(1);

      clock.advance(2);
      await expect(auth.authenticate(token)).resolves.toEqual({ accountId: account });
      expect(tokenAuthHits()).toBe(2);
    });

    it('keeps tokens apart', async () => {
      const a = crossbar.addAccount();
      const b = crossbar.addAccount();
      const auth = newService();
      await expect(auth.authenticate(crossbar.issueToken(a))).resolves.toEqual({ accountId: a });
      await expect(auth.authenticate(crossbar.issueToken(b))).resolves.toEqual({ accountId: b });
      expect(tokenAuthHits()).toBe(2);
    });

    it('never reuses an answer past the token exp', async () => {
      const account = crossbar.addAccount();
      // exp = floor(now) + 5 s, so the token has between 4 and 5 seconds left.
      const token = crossbar.issueToken(account, 5);
      const auth = newService();

      await expect(auth.authenticate(token)).resolves.toEqual({ accountId: account });
      clock.advance(3000);
      await expect(auth.authenticate(token)).resolves.toEqual({ accountId: account });
      expect(tokenAuthHits()).toBe(1);

      // Well inside AUTH_CACHE_TTL_S, but past exp: the cached answer must not be used.
      clock.advance(2001);
      const error = await rejectionOf(auth.authenticate(token));
      expect(error).toBeInstanceOf(TokenInvalidError);
      expectNoToken(error, token);
    });

    it('does not cache at all when AUTH_CACHE_TTL_S is 0', async () => {
      const account = crossbar.addAccount();
      const token = crossbar.issueToken(account);
      const auth = newService({ AUTH_CACHE_TTL_S: '0' });
      await auth.authenticate(token);
      await auth.authenticate(token);
      expect(tokenAuthHits()).toBe(2);
    });

    it('keeps answering from the cache for a token revoked within the TTL', async () => {
      const account = crossbar.addAccount();
      const token = crossbar.issueToken(account);
      const auth = newService();
      await auth.authenticate(token);
      crossbar.revoke(token);
      await expect(auth.authenticate(token)).resolves.toEqual({ accountId: account });
      clock.advance(CACHE_TTL_S * 1000 + 1);
      await expect(auth.authenticate(token)).rejects.toBeInstanceOf(TokenInvalidError);
    });
  });

  describe('negative cache', () => {
    it('asks about a bad token once within AUTH_NEGATIVE_TTL_S and again after it', async () => {
      const token = 'not-a-valid-token';
      const auth = newService();

      const first = await rejectionOf(auth.authenticate(token));
      expect(first).toBeInstanceOf(TokenInvalidError);
      expect((first as GatewayError).message).toBe('failed to authenticate token');
      expectNoToken(first, token);
      expect(tokenAuthHits()).toBe(1);

      clock.advance(NEGATIVE_TTL_S * 1000 - 1);
      await expect(auth.authenticate(token)).rejects.toBeInstanceOf(TokenInvalidError);
      await expect(auth.authorize(token, crossbar.addAccount())).rejects.toBeInstanceOf(
        TokenInvalidError,
      );
      expect(tokenAuthHits()).toBe(1);

      clock.advance(2);
      await expect(auth.authenticate(token)).rejects.toBeInstanceOf(TokenInvalidError);
      expect(tokenAuthHits()).toBe(2);
    });

    it('refuses a revoked token once its cached answer has expired', async () => {
      const token = crossbar.issueToken(crossbar.addAccount());
      crossbar.revoke(token);
      const error = await rejectionOf(newService().authenticate(token));
      expect(error).toBeInstanceOf(TokenInvalidError);
      expectNoToken(error, token);
    });
  });

  describe('single flight', () => {
    it('charges a requester only for questions Crossbar must answer, up to its budget', async () => {
      const auth = newService({ CROSSBAR_LOOKUPS_BURST: '3', CROSSBAR_LOOKUPS_PER_MIN: '1' });
      const flooder = {};
      const polite = {};
      const known = crossbar.issueToken(crossbar.addAccount());
      await auth.authenticate(known, flooder);
      // Cached answers cost nothing, however often they are asked for.
      for (let i = 0; i < 10; i++) await auth.authenticate(known, flooder);
      const unknown = (i: number) => `f00dfeedf00dfeedf00dfeedf00d${String(i).padStart(4, '0')}`;
      await expect(auth.authenticate(unknown(1), flooder)).rejects.toBeInstanceOf(
        TokenInvalidError,
      );
      await expect(auth.authenticate(unknown(2), flooder)).rejects.toBeInstanceOf(
        TokenInvalidError,
      );
      const before = crossbar.hitsOf('/v2/token_auth');
      const refused = await rejectionOf(auth.authenticate(unknown(3), flooder));
      expect(refused).toBeInstanceOf(RateLimitedError);
      expect(refused).toMatchObject({ code: 'rate_limited', temporary: true });
      expect(crossbar.hitsOf('/v2/token_auth')).toBe(before);
      // Another connection has a budget of its own; a minute later the flooder has one more.
      await expect(auth.authenticate(unknown(3), polite)).rejects.toBeInstanceOf(TokenInvalidError);
      clock.advance(60_000);
      await expect(auth.authenticate(unknown(4), flooder)).rejects.toBeInstanceOf(
        TokenInvalidError,
      );
    });

    it('charges the address of many connections one shared budget', async () => {
      const auth = newService({
        CROSSBAR_LOOKUPS_BURST: '3',
        CROSSBAR_IP_LOOKUPS_BURST: '5',
        CROSSBAR_IP_LOOKUPS_PER_MIN: '1',
      });
      const unknown = (i: number) => `badc0ffeebadc0ffeebadc0ffee${String(i).padStart(4, '0')}`;
      const before = tokenAuthHits();
      const codes: string[] = [];
      for (let connection = 0; connection < 4; connection++) {
        const requester = { clientAddress: '192.0.2.1' };
        for (let i = 0; i < 3; i++) {
          const error = await rejectionOf(
            auth.authenticate(unknown(connection * 3 + i), requester),
          );
          codes.push((error as GatewayError).code);
        }
      }
      expect(codes.filter((code) => code === 'token_invalid')).toHaveLength(5);
      expect(codes.slice(5).every((code) => code === 'rate_limited')).toBe(true);
      expect(tokenAuthHits() - before).toBe(5);
      // Another address is not held back; a minute later the first has one lookup more.
      await expect(
        auth.authenticate(unknown(100), { clientAddress: '192.0.2.2' }),
      ).rejects.toBeInstanceOf(TokenInvalidError);
      clock.advance(60_000);
      await expect(
        auth.authenticate(unknown(101), { clientAddress: '192.0.2.1' }),
      ).rejects.toBeInstanceOf(TokenInvalidError);
    });

    it('10 concurrent authenticate calls make one request', async () => {
      const account = crossbar.addAccount();
      const token = crossbar.issueToken(account);
      const auth = newService();
      const results = await Promise.all(Array.from({ length: 10 }, () => auth.authenticate(token)));
      expect(results).toEqual(Array.from({ length: 10 }, () => ({ accountId: account })));
      expect(tokenAuthHits()).toBe(1);
    });

    it('10 concurrent authorize calls for a child account make one request of each kind', async () => {
      const reseller = crossbar.addAccount();
      const child = crossbar.addAccount(undefined, reseller);
      const token = crossbar.issueToken(reseller);
      const auth = newService();
      await Promise.all(Array.from({ length: 10 }, () => auth.authorize(token, child)));
      expect(tokenAuthHits()).toBe(1);
      expect(accountHits(child)).toBe(1);
    });

    it('10 concurrent calls during an outage make one request and all fail', async () => {
      const token = crossbar.issueToken(crossbar.addAccount());
      const auth = newService();
      crossbar.setFault({ status: 503 });
      const outcomes = await Promise.allSettled(
        Array.from({ length: 10 }, () => auth.authenticate(token)),
      );
      expect(outcomes.every((o) => o.status === 'rejected')).toBe(true);
      expect(tokenAuthHits()).toBe(1);
    });
  });

  describe('account scope', () => {
    let reseller: string;
    let child: string;
    let grandchild: string;
    let sibling: string;

    beforeEach(() => {
      reseller = crossbar.addAccount();
      child = crossbar.addAccount(undefined, reseller);
      grandchild = crossbar.addAccount(undefined, child);
      sibling = crossbar.addAccount(undefined, reseller);
    });

    it('authorizes the token own account without asking about accounts', async () => {
      const token = crossbar.issueToken(child);
      await expect(newService().authorize(token, child)).resolves.toMatchObject({
        accountId: child,
      });
      expect(accountHits(child)).toBe(0);
    });

    it.each([
      ['reseller -> child', 'reseller', 'child'],
      ['reseller -> grandchild', 'reseller', 'grandchild'],
      ['child -> grandchild', 'child', 'grandchild'],
    ] as const)('allows %s', async (_label, owner, target) => {
      const accounts = { reseller, child, grandchild, sibling };
      const token = crossbar.issueToken(accounts[owner]);
      const auth = newService();
      await expect(auth.authorize(token, accounts[target])).resolves.toMatchObject({
        accountId: accounts[owner],
      });
      // The grant is cached like the identity.
      await auth.authorize(token, accounts[target]);
      expect(accountHits(accounts[target])).toBe(1);
    });

    it.each([
      ['child -> parent', 'child', 'reseller'],
      ['grandchild -> grandparent', 'grandchild', 'reseller'],
      ['child -> sibling', 'child', 'sibling'],
    ] as const)('forbids %s', async (_label, owner, target) => {
      const accounts = { reseller, child, grandchild, sibling };
      const token = crossbar.issueToken(accounts[owner]);
      const error = await rejectionOf(newService().authorize(token, accounts[target]));
      expect(error).toBeInstanceOf(AccountForbiddenError);
      expect((error as GatewayError).message).toBe('unauthorized account id');
      expect(logs.lines.some((line) => line.includes('refused account'))).toBe(true);
      expectNoToken(error, token);
    });

    it('allows "*" (every account) only to a superduper admin, as its own account document says', async () => {
      const admins = crossbar.addAccount(undefined, undefined, { superduperAdmin: true });
      const adminToken = crossbar.issueToken(admins);
      const auth = newService();
      await expect(auth.authorize(adminToken, '*')).resolves.toMatchObject({ accountId: admins });
      // Crossbar lets the system administrators read any account, as cb_simple_authz does.
      await expect(auth.authorize(adminToken, sibling)).resolves.toMatchObject({
        accountId: admins,
      });
      await auth.authorize(adminToken, '*');
      expect(accountHits(admins)).toBe(1);

      for (const owner of [reseller, child]) {
        const token = crossbar.issueToken(owner);
        const error = await rejectionOf(auth.authorize(token, '*'));
        expect(error).toBeInstanceOf(InvalidAccountError);
        expect((error as GatewayError).message).toBe('unauthorized wildcard account id');
        expectNoToken(error, token);
      }
    });

    it('forbids an unknown account', async () => {
      const token = crossbar.issueToken(reseller);
      const unknown = 'f'.repeat(32);
      await expect(newService().authorize(token, unknown)).rejects.toBeInstanceOf(
        AccountForbiddenError,
      );
      expect(accountHits(unknown)).toBe(1);
    });

    it('caches a refusal for AUTH_NEGATIVE_TTL_S only', async () => {
      const token = crossbar.issueToken(child);
      const auth = newService();
      await expect(auth.authorize(token, reseller)).rejects.toBeInstanceOf(AccountForbiddenError);
      clock.advance(NEGATIVE_TTL_S * 1000 - 1);
      await expect(auth.authorize(token, reseller)).rejects.toBeInstanceOf(AccountForbiddenError);
      expect(accountHits(reseller)).toBe(1);
      clock.advance(2);
      await expect(auth.authorize(token, reseller)).rejects.toBeInstanceOf(AccountForbiddenError);
      expect(accountHits(reseller)).toBe(2);
    });

    it('reports a token revoked since its identity was cached as invalid, not forbidden', async () => {
      const token = crossbar.issueToken(reseller);
      const auth = newService();
      await auth.authenticate(token);
      crossbar.revoke(token);
      const error = await rejectionOf(auth.authorize(token, child));
      expect(error).toBeInstanceOf(TokenInvalidError);
      expectNoToken(error, token);
    });
  });

  describe('temporary failures', () => {
    it.each([500, 502, 503, 504])(
      'Crossbar answering %i -> AuthUnavailableError, not cached',
      async (status) => {
        const account = crossbar.addAccount();
        const token = crossbar.issueToken(account);
        const auth = newService();

        crossbar.setFault({ status });
        const error = await rejectionOf(auth.authenticate(token));
        expect(error).toBeInstanceOf(AuthUnavailableError);
        expect((error as AuthUnavailableError).message).toBe('authentication service unavailable');
        expect((error as AuthUnavailableError).temporary).toBe(true);
        expect((error as AuthUnavailableError).code).toBe('auth_unavailable');
        expectNoToken(error, token);

        // No clock advance: the failure must not have been cached, positively or negatively.
        crossbar.setFault(undefined);
        await expect(auth.authenticate(token)).resolves.toEqual({ accountId: account });
        expect(tokenAuthHits()).toBe(2);
      },
    );

    it('a failure while checking another account is not cached either', async () => {
      const reseller = crossbar.addAccount();
      const child = crossbar.addAccount(undefined, reseller);
      const token = crossbar.issueToken(reseller);
      const auth = newService();
      await auth.authenticate(token);

      crossbar.setFault({ status: 503 });
      await expect(auth.authorize(token, child)).rejects.toBeInstanceOf(AuthUnavailableError);
      crossbar.setFault(undefined);
      await expect(auth.authorize(token, child)).resolves.toMatchObject({ accountId: reseller });
      expect(accountHits(child)).toBe(2);
    });

    it('Crossbar down -> AuthUnavailableError, and recovers when it is back', async () => {
      const account = crossbar.addAccount();
      const token = crossbar.issueToken(account);
      const auth = newService();

      await crossbar.stop();
      const error = await rejectionOf(auth.authenticate(token));
      expect(error).toBeInstanceOf(AuthUnavailableError);
      expect((error as AuthUnavailableError).message).toBe('authentication service unavailable');
      expectNoToken(error, token);

      await crossbar.restart();
      await expect(auth.authenticate(token)).resolves.toEqual({ accountId: account });
    });

    it('Crossbar hanging past CROSSBAR_TIMEOUT_MS -> AuthUnavailableError', async () => {
      const token = crossbar.issueToken(crossbar.addAccount());
      const auth = newService({ CROSSBAR_TIMEOUT_MS: '200' });
      crossbar.setFault('hang');
      const error = await rejectionOf(auth.authenticate(token));
      expect(error).toBeInstanceOf(AuthUnavailableError);
      expect((error as AuthUnavailableError).message).toBe('authentication service unavailable');
      // `reason` is not asserted: under Jest, fetch's DOMException comes from another realm, so
      // `instanceof Error` in describeFetchError fails and the reason reads "crossbar unreachable"
      // (plain Node reports "crossbar timed out").
      expectNoToken(error, token);
      expect(tokenAuthHits()).toBe(1);
    });
  });

  describe('recheck (live subscriptions)', () => {
    it('asks Crossbar whatever is cached, and a revoked token is refused to the next subscribe', async () => {
      const account = crossbar.addAccount();
      const token = crossbar.issueToken(account, 600);
      const auth = newService();
      await auth.authorize(token, account);
      const identity = await auth.recheck(token, account);
      expect(identity.accountId).toBe(account);
      expect(identity.exp).toBeGreaterThan(Date.now() / 1000);
      expect(tokenAuthHits()).toBe(2);
      // The token's own account: the token check says it all.
      expect(accountHits(account)).toBe(0);

      crossbar.revoke(token);
      const error = await rejectionOf(auth.recheck(token, account));
      expect(error).toBeInstanceOf(TokenInvalidError);
      expectNoToken(error, token);
      // Within AUTH_CACHE_TTL_S of the last positive answer, yet refused: the cache learnt it.
      await expect(auth.authorize(token, account)).rejects.toBeInstanceOf(TokenInvalidError);
      expect(tokenAuthHits()).toBe(3);
    });

    it('refuses an account the token may no longer see', async () => {
      const reseller = crossbar.addAccount();
      const child = crossbar.addAccount(undefined, reseller);
      const token = crossbar.issueToken(reseller);
      const auth = newService();
      await expect(auth.recheck(token, child)).resolves.toMatchObject({ accountId: reseller });
      // The child moves to another reseller.
      crossbar.addAccount(child, crossbar.addAccount());
      const error = await rejectionOf(auth.recheck(token, child));
      expect(error).toBeInstanceOf(AccountForbiddenError);
      expectNoToken(error, token);
      await expect(auth.authorize(token, child)).rejects.toBeInstanceOf(AccountForbiddenError);
      expect(accountHits(child)).toBe(2);
    });

    it('refuses "*" once the token account is no longer the superduper admins\'', async () => {
      const admins = crossbar.addAccount(undefined, undefined, { superduperAdmin: true });
      const token = crossbar.issueToken(admins);
      const auth = newService();
      await expect(auth.recheck(token, '*')).resolves.toMatchObject({ accountId: admins });
      crossbar.addAccount(admins, undefined, { superduperAdmin: false });
      const error = await rejectionOf(auth.recheck(token, '*'));
      expect(error).toBeInstanceOf(AccountForbiddenError);
    });

    it('reports an outage as temporary and caches nothing of it', async () => {
      const account = crossbar.addAccount();
      const token = crossbar.issueToken(account);
      const auth = newService();
      await auth.authorize(token, account);
      crossbar.setFault({ status: 503 });
      const error = await rejectionOf(auth.recheck(token, account));
      expect(error).toBeInstanceOf(AuthUnavailableError);
      expect((error as GatewayError).temporary).toBe(true);
      crossbar.setFault(undefined);
      // The earlier positive answer still stands.
      await expect(auth.authorize(token, account)).resolves.toMatchObject({ accountId: account });
      expect(tokenAuthHits()).toBe(2);
    });
  });
});
