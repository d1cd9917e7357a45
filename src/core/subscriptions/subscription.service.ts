import { Inject, Injectable } from '@nestjs/common';
import { BadRequestError, InvalidAccountError, TokenRequiredError } from '../errors';
import { FamilyRegistry } from '../families/family.registry';
import type { Session, Subscription } from '../session';
import {
  ACCOUNT_AUTHORIZER,
  BROKER_BINDINGS,
  type AccountAuthorizer,
  type BrokerBindings,
} from './ports';
import { SubscriptionRegistry } from './subscription.registry';

/** Kazoo account ids are 32 lower-case hex characters. */
const ACCOUNT_ID = /^[0-9a-f]{32}$/;

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
  ) {}

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

    await this.authorizer.authorize(token, accountId);
    if (this.closed.has(session)) return [];

    const added: Subscription[] = [];
    for (const { prefix, parsed: binding } of parsed) {
      const result = this.registry.add(session, accountId, prefix, binding, {
        name: command.name,
        metadata: command.metadata,
      });
      if (result.added) added.push(result.subscription);
    }
    const outcomes = await Promise.allSettled(
      added.map((s) => this.broker.acquire(s.family, s.binding.brokerKeys)),
    );
    const failure = outcomes.find((o): o is PromiseRejectedResult => o.status === 'rejected');
    if (failure) {
      // All or nothing: undo this request, releasing only what the broker did take.
      added.forEach((subscription, i) => {
        this.registry.remove(session, subscription.accountId, subscription.binding.binding);
        if (outcomes[i].status === 'fulfilled') this.release(subscription);
      });
      throw failure.reason;
    }
    return this.bindingsOf(session);
  }

  private async doUnsubscribe(
    session: Session,
    command: UnsubscribeCommand,
  ): Promise<UnsubscribeResult> {
    const token = requireToken(command.token);
    const bindings = command.bindings ?? [];
    let removed: Subscription[];
    if (command.accountId === undefined) {
      if (bindings.length > 0) throw new BadRequestError('missing required keys : account_id');
      await this.authorizer.authenticate(token);
      removed = this.registry.removeAll(session);
    } else {
      const accountId = checkAccountId(command.accountId);
      // Unsubscribing only ever releases what this session holds, yet the account is still
      // checked so a token learns nothing about accounts outside its scope.
      await this.authorizer.authorize(token, accountId);
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

  /** Forgets a closed session and releases everything it held. */
  disconnect(session: Session): void {
    this.closed.add(session);
    this.registry.removeAll(session).forEach((subscription) => this.release(subscription));
  }

  bindingsOf(session: Session): string[] {
    return unique(this.registry.of(session).map((s) => s.binding.binding));
  }

  private inOrder<T>(session: Session, request: () => Promise<T>): Promise<T> {
    const previous = this.queues.get(session) ?? Promise.resolve();
    const result = previous.then(request, request);
    this.queues.set(
      session,
      result.catch(() => undefined),
    );
    return result;
  }

  private release(subscription: Subscription): void {
    this.broker.release(subscription.family, subscription.binding.brokerKeys);
  }
}

function requireToken(token: string | undefined): string {
  if (token === undefined || token === '') throw new TokenRequiredError();
  return token;
}

function checkAccountId(accountId: string): string {
  if (accountId === '*') throw new InvalidAccountError('unauthorized wildcard account id');
  if (!ACCOUNT_ID.test(accountId)) throw new InvalidAccountError('invalid account id');
  return accountId;
}

function unique(values: string[]): string[] {
  return [...new Set(values)];
}
