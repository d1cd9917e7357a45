import { Inject, Injectable } from '@nestjs/common';
import {
  type GatewayError,
  BadRequestError,
  InvalidAccountError,
  LimitExceededError,
  TokenRequiredError,
} from '../errors';
import { FamilyRegistry } from '../families/family.registry';
import type { Session, Subscription } from '../session';
import { Clock } from '../clock';
import { isAccountId } from '../kazoo/account-databases';
import {
  ALL_ACCOUNTS,
  type BindingContext,
  type BrokerKey,
  type FamilyBinding,
} from '../families/event-family';
import {
  ACCOUNT_AUTHORIZER,
  ACCOUNT_DIRECTORY,
  BROKER_BINDINGS,
  SUBSCRIPTION_LIMITS,
  type SubscriptionLimits,
  type AccountAuthorizer,
  type AccountDirectory,
  type BrokerBindings,
  type TokenIdentity,
} from './ports';
import { AuthorizationWatch } from './authorization-watch';
import { SubscriptionRegistry, sameKeys } from './subscription.registry';

export interface SubscribeCommand {
  readonly token?: string;
  readonly accountId?: string;
  readonly bindings: readonly string[];
  readonly name?: unknown;
  readonly metadata?: unknown;
}

export interface UnsubscribeCommand {
  readonly token?: string;
  readonly accountId?: string;
  /** Absent or empty: drop every subscription of the session (of `accountId` when given). */
  readonly bindings?: readonly string[];
}

export interface UnsubscribeResult {
  readonly unsubscribed: string[];
  readonly subscribed: string[];
}

/**
 * The protocol-independent subscribe/unsubscribe engine every transport calls: validates,
 * authorizes against Crossbar, records subscriptions and keeps the broker bindings they need.
 */
@Injectable()
export class SubscriptionService {
  private readonly closed = new WeakSet<Session>();
  /** Requests of one session run in arrival order, so "subscribe then unsubscribe" ends unsubscribed. */
  private readonly queues = new WeakMap<Session, Promise<unknown>>();

  constructor(
    private readonly registry: SubscriptionRegistry,
    private readonly families: FamilyRegistry,
    @Inject(ACCOUNT_AUTHORIZER) private readonly authorizer: AccountAuthorizer,
    @Inject(BROKER_BINDINGS) private readonly broker: BrokerBindings,
    @Inject(ACCOUNT_DIRECTORY) private readonly directory: AccountDirectory,
    private readonly clock: Clock,
    @Inject(SUBSCRIPTION_LIMITS) private readonly limits: SubscriptionLimits,
    private readonly watch: AuthorizationWatch,
  ) {
    watch.onRevoked((subscriptions, error) => this.revoke(subscriptions, error));
  }

  /** Checks a token with Crossbar (for protocols that authenticate a connection once). */
  authenticate(token: string, session?: Session): Promise<TokenIdentity> {
    return this.authorizer.authenticate(token, session);
  }

  /** Subscribes all bindings or none; returns every binding the session now holds. */
  subscribe(session: Session, command: SubscribeCommand): Promise<string[]> {
    return this.inOrder(session, () => this.doSubscribe(session, command));
  }

  unsubscribe(session: Session, command: UnsubscribeCommand): Promise<UnsubscribeResult> {
    return this.inOrder(session, () => this.doUnsubscribe(session, command));
  }

  private async doSubscribe(session: Session, command: SubscribeCommand): Promise<string[]> {
    const token = requireToken(command.token);
    const missing = [
      ...(command.accountId === undefined ? ['account_id'] : []),
      ...(command.bindings.length === 0 ? ['binding'] : []),
    ];
    if (missing.length > 0)
      throw new BadRequestError(`missing required keys : ${missing.join(', ')}`);
    const accountId = checkAccountId(command.accountId as string);
    const parsed = command.bindings.map((binding) => this.families.parse(binding));
    this.checkBindingLimit(session, accountId, command.bindings);

    const identity = await this.authorizer.authorize(token, accountId, session);
    const context = this.contextFor(accountId, token);
    const keyed = await Promise.all(
      parsed.map(async ({ entry, parsed: binding }) => {
        const keys = await entry.family.brokerKeys(binding, context);
        const subscriptionKey =
          entry.family.subscriptionKey?.(binding, context) ??
          keys[0]?.routingKey ??
          binding.pattern;
        return { prefix: entry.prefix, binding, keys, subscriptionKey };
      }),
    );
    if (this.closed.has(session)) return [];
    this.checkBrokerKeyLimit(session, accountId, keyed);

    const added: Subscription[] = [];
    const requested: Subscription[] = [];
    for (const { prefix, binding, keys, subscriptionKey } of keyed) {
      const result = this.registry.add(session, accountId, prefix, binding, keys, {
        subscriptionKey,
        name: command.name,
        metadata: command.metadata,
        authAccountId: identity.accountId,
      });
      requested.push(result.subscription);
      if (result.added) added.push(result.subscription);
    }
    const outcomes = await Promise.allSettled(added.map((s) => this.broker.acquire(s.brokerKeys)));
    const failure = outcomes.find((o): o is PromiseRejectedResult => o.status === 'rejected');
    if (failure) {
      // All or nothing: undo this request, releasing only what the broker did take.
      added.forEach((subscription, i) => {
        this.registry.remove(session, subscription.accountId, subscription.binding.binding);
        if (outcomes[i].status === 'fulfilled') this.release(subscription);
      });
      throw failure.reason;
    }
    // Held from now on by this token's authorization, also those subscribed before with another.
    requested.forEach((subscription) => this.watch.track(subscription, token, identity));
    session.authorized?.();
    return this.bindingsOf(session);
  }

  /**
   * Releases what the session holds. A binding the session holds was authorized when it was
   * subscribed, so dropping it needs no Crossbar round trip (and works while Crossbar is down);
   * only a request naming something the session does not hold is checked, so that a token
   * learns nothing about accounts outside its scope.
   */
  private async doUnsubscribe(
    session: Session,
    command: UnsubscribeCommand,
  ): Promise<UnsubscribeResult> {
    const token = requireToken(command.token);
    const bindings = command.bindings ?? [];
    let removed: Subscription[];
    if (command.accountId === undefined) {
      if (bindings.length > 0) throw new BadRequestError('missing required keys : account_id');
      if (this.registry.of(session).length === 0) {
        await this.authorizer.authenticate(token, session);
      }
      removed = this.registry.removeAll(session);
    } else {
      const accountId = checkAccountId(command.accountId);
      const held = this.registry.of(session).filter((s) => s.accountId === accountId);
      const holdsAll =
        bindings.length === 0
          ? held.length > 0
          : bindings.every((binding) => held.some((s) => s.binding.binding === binding));
      if (!holdsAll) await this.authorizer.authorize(token, accountId, session);
      removed =
        bindings.length === 0
          ? this.registry.removeAll(session, accountId)
          : bindings.flatMap((binding) => this.registry.remove(session, accountId, binding) ?? []);
    }
    removed.forEach((subscription) => this.release(subscription));
    return {
      unsubscribed:
        bindings.length > 0 ? [...bindings] : unique(removed.map((s) => s.binding.binding)),
      subscribed: this.bindingsOf(session),
    };
  }

  /**
   * Every subscription costs the node on each event of its account: one connection may not
   * hold more than `maxBindingsPerConnection`, counted before any Crossbar or broker work.
   */
  private checkBindingLimit(
    session: Session,
    accountId: string,
    bindings: readonly string[],
  ): void {
    const held = this.registry.of(session);
    const heldHere = new Set(
      held.filter((s) => s.accountId === accountId).map((s) => s.binding.binding),
    );
    const added = new Set(bindings.filter((binding) => !heldHere.has(binding))).size;
    const max = this.limits.maxBindingsPerConnection;
    if (held.length + added > max) {
      throw new LimitExceededError(`binding limit reached: a connection may hold ${max}`);
    }
  }

  /**
   * Each distinct broker key is a binding on RabbitMQ: the subscriptions of one account, across
   * all its connections, may not hold more than `maxBrokerKeysPerAccount` on the node. Checked
   * once the keys are known and before any broker work; between this check and the registry
   * update nothing awaits, so concurrent requests cannot overshoot together.
   */
  private checkBrokerKeyLimit(
    session: Session,
    accountId: string,
    keyed: readonly { binding: FamilyBinding; keys: readonly BrokerKey[] }[],
  ): void {
    const held = new Set(
      this.registry
        .of(session)
        .filter((s) => s.accountId === accountId)
        .map((s) => s.binding.binding),
    );
    // Bindings the session holds already add nothing: subscribing them again is a no-op.
    const keys = keyed.filter(({ binding }) => !held.has(binding.binding)).flatMap((k) => k.keys);
    const max = this.limits.maxBrokerKeysPerAccount;
    const unheld = this.registry.unheldBrokerKeys(accountId, keys);
    // A request adding no key is never refused, even for an account that keys moved past the limit.
    if (unheld > 0 && this.registry.brokerKeyCount(accountId) + unheld > max) {
      throw new LimitExceededError(
        `broker key limit reached for this account: an account may hold ${max} on this node`,
      );
    }
  }

  /** Forgets a closed session and releases everything it held. */
  disconnect(session: Session): void {
    this.closed.add(session);
    this.registry.removeAll(session).forEach((subscription) => this.release(subscription));
  }

  bindingsOf(session: Session): string[] {
    return unique(this.registry.of(session).map((s) => s.binding.binding));
  }

  /**
   * Recomputes the keys of families whose keys name a month (MODB) and moves every live
   * subscription to them: new keys are bound before old ones are released, so nothing is missed.
   */
  async refreshMonthlyKeys(): Promise<number> {
    let moved = 0;
    for (const { prefix, family, options } of this.families.all()) {
      if (!options.monthlyKeys) continue;
      for (const subscription of this.registry.ofFamily(prefix)) {
        const keys = await family.brokerKeys(
          subscription.binding,
          this.contextFor(subscription.accountId, undefined),
        );
        if (sameKeys(keys, subscription.brokerKeys)) continue;
        await this.broker.acquire(keys);
        if (!this.registry.contains(subscription)) {
          // Unsubscribed meanwhile: its old keys are released already; drop the new ones.
          this.broker.release(keys);
          continue;
        }
        const previous = subscription.brokerKeys;
        this.registry.replaceKeys(subscription, keys);
        this.broker.release(previous);
        moved++;
      }
    }
    return moved;
  }

  private contextFor(accountId: string, token: string | undefined): BindingContext {
    return {
      accountId,
      now: this.clock.now(),
      realm: () =>
        token === undefined
          ? Promise.reject(new Error('the realm is only known while a client subscribes'))
          : this.directory.realmOf(token, accountId),
    };
  }

  private inOrder<T>(session: Session, request: () => Promise<T>): Promise<T> {
    const previous = this.queues.get(session) ?? Promise.resolve();
    const result = previous.then(request, request);
    const tail = result.then(
      () => undefined,
      () => undefined,
    );
    this.queues.set(session, tail);
    // An idle session keeps no promise: thousands of quiet dashboards hold nothing here.
    tail
      .then(() => {
        if (this.queues.get(session) === tail) this.queues.delete(session);
      })
      .catch(() => undefined);
    return result;
  }

  /**
   * Drops subscriptions whose token was revoked, expired or lost the account, releases their
   * keys, and tells each session which of its bindings went and why.
   */
  private revoke(subscriptions: readonly Subscription[], error: GatewayError): void {
    const lost = new Map<Session, Map<string, string[]>>();
    for (const subscription of subscriptions) {
      const { session, accountId } = subscription;
      if (!this.registry.contains(subscription)) continue;
      this.registry.remove(session, accountId, subscription.binding.binding);
      this.release(subscription);
      let byAccount = lost.get(session);
      if (!byAccount) {
        byAccount = new Map();
        lost.set(session, byAccount);
      }
      byAccount.set(accountId, [...(byAccount.get(accountId) ?? []), subscription.binding.binding]);
    }
    for (const [session, byAccount] of lost) {
      for (const [accountId, bindings] of byAccount) {
        session.authorizationLost?.(accountId, bindings, error);
      }
    }
  }

  private release(subscription: Subscription): void {
    this.watch.untrack(subscription);
    this.broker.release(subscription.brokerKeys);
  }
}

function requireToken(token: string | undefined): string {
  if (token === undefined || token === '') throw new TokenRequiredError();
  return token;
}

/** A Kazoo account id, or `*` (every account), which only a superduper admin is authorized for. */
function checkAccountId(accountId: string): string {
  if (accountId !== ALL_ACCOUNTS && !isAccountId(accountId)) {
    throw new InvalidAccountError('invalid account id');
  }
  return accountId;
}

function unique(values: string[]): string[] {
  return [...new Set(values)];
}
