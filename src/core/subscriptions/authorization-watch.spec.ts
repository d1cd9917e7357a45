import { SettableClock } from '../../../test/support/clock';
import {
  AccountForbiddenError,
  AuthUnavailableError,
  type GatewayError,
  TokenInvalidError,
} from '../errors';
import type { Session, Subscription } from '../session';
import { AuthorizationWatch } from './authorization-watch';
import type { AccountAuthorizer, TokenIdentity } from './ports';

const START = '2026-05-01T12:00:00Z';
const INTERVAL_MS = 60_000;
const GRACE_MS = 300_000;
const account = (n: number): string => n.toString(16).padStart(32, '0');

/** Crossbar as the watch sees it: counts re-checks, refuses what a test says it refuses. */
class FakeAuthorizer implements AccountAuthorizer {
  readonly rechecks: Array<{ token: string; accountId: string }> = [];
  readonly refusals = new Map<string, GatewayError>();
  outage = false;

  authenticate(): Promise<TokenIdentity> {
    throw new Error('the watch never authenticates');
  }

  authorize(): Promise<TokenIdentity> {
    throw new Error('the watch never authorizes through the cache');
  }

  recheck(token: string, accountId: string): Promise<TokenIdentity> {
    this.rechecks.push({ token, accountId });
    if (this.outage) return Promise.reject(new AuthUnavailableError('accounts answered 503'));
    const refusal = this.refusals.get(`${token}/${accountId}`) ?? this.refusals.get(token);
    return refusal ? Promise.reject(refusal) : Promise.resolve({ accountId });
  }
}

function subscription(name: string, accountId: string, binding = 'call.CHANNEL_CREATE.*') {
  const session: Session = { id: name, send: () => undefined };
  const value: Subscription = {
    session,
    accountId,
    family: 'call',
    binding: { binding, pattern: binding },
    brokerKeys: [],
    subscriptionKey: binding,
    order: 0,
  };
  return value;
}

describe('AuthorizationWatch', () => {
  let clock: SettableClock;
  let authorizer: FakeAuthorizer;
  let watch: AuthorizationWatch;
  let revoked: Array<{ subscriptions: readonly Subscription[]; code: string }>;

  const later = (ms: number) => clock.set(new Date(clock.now().getTime() + ms).toISOString());

  beforeEach(() => {
    clock = new SettableClock(START);
    authorizer = new FakeAuthorizer();
    watch = new AuthorizationWatch(authorizer, clock, {
      intervalMs: INTERVAL_MS,
      outageGraceMs: GRACE_MS,
    });
    revoked = [];
    watch.onRevoked((subscriptions, error) => revoked.push({ subscriptions, code: error.code }));
  });

  it('re-checks once per token and account per interval, however many subscriptions share them', async () => {
    const tokens = Array.from({ length: 50 }, (_, i) => `token-${i}`);
    for (let i = 0; i < 10_000; i++) {
      const token = tokens[i % tokens.length];
      watch.track(subscription(`s${i}`, account(i % tokens.length)), token, {
        accountId: account(i % tokens.length),
      });
    }
    expect(watch.size).toBe(50);

    await watch.sweep();
    expect(authorizer.rechecks).toHaveLength(0);

    later(INTERVAL_MS);
    await watch.sweep();
    expect(authorizer.rechecks).toHaveLength(50);
    // Nothing is due again until a full interval after the last check.
    later(INTERVAL_MS - 1);
    await watch.sweep();
    expect(authorizer.rechecks).toHaveLength(50);
    later(1);
    await watch.sweep();
    expect(authorizer.rechecks).toHaveLength(100);
    expect(revoked).toEqual([]);
  });

  it('asks once at a time per token and account, even when sweeps overlap', async () => {
    let answer!: () => void;
    authorizer.recheck = (token, accountId) => {
      authorizer.rechecks.push({ token, accountId });
      return new Promise((resolve) => (answer = () => resolve({ accountId })));
    };
    watch.track(subscription('s1', account(1)), 'token', { accountId: account(1) });
    later(INTERVAL_MS);
    const first = watch.sweep();
    later(INTERVAL_MS);
    await watch.sweep();
    expect(authorizer.rechecks).toHaveLength(1);
    answer();
    await first;
  });

  it('revokes at the token’s exp without asking Crossbar', async () => {
    const expSeconds = clock.now().getTime() / 1000 + 30;
    const sub = subscription('s1', account(1));
    watch.track(sub, 'short-lived', { accountId: account(1), exp: expSeconds });

    later(29_000);
    await watch.sweep();
    expect(revoked).toEqual([]);
    later(1_000);
    await watch.sweep();
    expect(revoked).toEqual([{ subscriptions: [sub], code: 'token_invalid' }]);
    expect(authorizer.rechecks).toEqual([]);
    expect(watch.size).toBe(0);
  });

  it('revokes every subscription of a revoked token, and only those', async () => {
    const a1 = subscription('s1', account(1));
    const a2 = subscription('s2', account(1));
    const kept = subscription('s3', account(1));
    watch.track(a1, 'revoked', { accountId: account(1) });
    watch.track(a2, 'revoked', { accountId: account(1) });
    watch.track(kept, 'valid', { accountId: account(1) });
    authorizer.refusals.set('revoked', new TokenInvalidError());

    later(INTERVAL_MS);
    await watch.sweep();
    expect(revoked).toEqual([{ subscriptions: [a1, a2], code: 'token_invalid' }]);
    expect(watch.size).toBe(1);
  });

  it('revokes an account the token may no longer see, keeping its other accounts', async () => {
    const lost = subscription('s1', account(2));
    const own = subscription('s1', account(1));
    watch.track(lost, 'reseller', { accountId: account(1) });
    watch.track(own, 'reseller', { accountId: account(1) });
    authorizer.refusals.set(`reseller/${account(2)}`, new AccountForbiddenError());

    later(INTERVAL_MS);
    await watch.sweep();
    expect(revoked).toEqual([{ subscriptions: [lost], code: 'account_forbidden' }]);
    expect(watch.size).toBe(1);
  });

  it('keeps streaming through a Crossbar outage for the grace, counted from the last good check', async () => {
    const sub = subscription('s1', account(1));
    watch.track(sub, 'token', { accountId: account(1) });
    later(INTERVAL_MS);
    await watch.sweep(); // a good check: the grace counts from here
    authorizer.outage = true;

    for (let elapsed = INTERVAL_MS; elapsed < GRACE_MS; elapsed += INTERVAL_MS) {
      later(INTERVAL_MS);
      await watch.sweep();
      expect(revoked).toEqual([]);
    }
    const checksInGrace = authorizer.rechecks.length;
    later(INTERVAL_MS);
    await watch.sweep();
    expect(authorizer.rechecks.length).toBe(checksInGrace + 1);
    expect(revoked).toEqual([{ subscriptions: [sub], code: 'auth_unavailable' }]);
  });

  it('asks again when the grace ends, not one interval after it', async () => {
    watch = new AuthorizationWatch(authorizer, clock, {
      intervalMs: INTERVAL_MS,
      outageGraceMs: 90_000,
    });
    watch.onRevoked((subscriptions, error) => revoked.push({ subscriptions, code: error.code }));
    watch.track(subscription('s1', account(1)), 'token', { accountId: account(1) });
    authorizer.outage = true;
    later(INTERVAL_MS);
    await watch.sweep();
    expect(revoked).toEqual([]);
    later(30_000);
    await watch.sweep();
    expect(revoked.map((r) => r.code)).toEqual(['auth_unavailable']);
  });

  it('forgets the outage once Crossbar answers again', async () => {
    watch.track(subscription('s1', account(1)), 'token', { accountId: account(1) });
    authorizer.outage = true;
    later(GRACE_MS - 1);
    await watch.sweep();
    authorizer.outage = false;
    later(INTERVAL_MS);
    await watch.sweep();
    authorizer.outage = true;
    later(GRACE_MS - 1);
    await watch.sweep();
    expect(revoked).toEqual([]);
  });

  it('moves a subscription subscribed again with another token to that token', async () => {
    const sub = subscription('s1', account(1));
    watch.track(sub, 'old', { accountId: account(1) });
    watch.track(sub, 'new', { accountId: account(1) });
    expect(watch.size).toBe(1);
    authorizer.refusals.set('old', new TokenInvalidError());

    later(INTERVAL_MS);
    await watch.sweep();
    expect(revoked).toEqual([]);
    expect(authorizer.rechecks).toEqual([{ token: 'new', accountId: account(1) }]);
  });

  it('stops watching an untracked subscription, and a grant with none left', async () => {
    const first = subscription('s1', account(1));
    const second = subscription('s2', account(1));
    watch.track(first, 'token', { accountId: account(1) });
    watch.track(second, 'token', { accountId: account(1) });
    watch.untrack(first);
    authorizer.refusals.set('token', new TokenInvalidError());
    later(INTERVAL_MS);
    await watch.sweep();
    expect(revoked).toEqual([{ subscriptions: [second], code: 'token_invalid' }]);

    watch.track(first, 'other', { accountId: account(1) });
    watch.untrack(first);
    expect(watch.size).toBe(0);
    later(INTERVAL_MS);
    await watch.sweep();
    expect(authorizer.rechecks).toEqual([{ token: 'token', accountId: account(1) }]);
  });

  it('ignores the answer for a grant dropped while it was asked', async () => {
    let answer!: () => void;
    authorizer.recheck = () =>
      new Promise((_resolve, reject) => (answer = () => reject(new TokenInvalidError())));
    const sub = subscription('s1', account(1));
    watch.track(sub, 'token', { accountId: account(1) });
    later(INTERVAL_MS);
    const sweep = watch.sweep();
    watch.untrack(sub);
    answer();
    await sweep;
    expect(revoked).toEqual([]);
  });
});
