import {
  BeforeApplicationShutdown,
  Inject,
  Injectable,
  Logger,
  OnApplicationBootstrap,
} from '@nestjs/common';
import type { Channel } from 'amqplib';
import { Environment } from '../config/environment';
import { BrokerRefusedError } from '../core/errors';
import type { BrokerKey } from '../core/families/event-family';
import type { BrokerBindings } from '../core/subscriptions/ports';
import { BrokerConnection, type ChannelSource } from './broker-connection';
import {
  ACCESS_REFUSED,
  NOT_FOUND,
  PRECONDITION_FAILED,
  isMissingExchange,
  messageOf,
  refusalOf,
  type BrokerRefusal,
} from './broker-errors';

/** Kazoo declares its exchanges this way (blackhole spec §4.5); other flags fail with 406. */
export const KAZOO_EXCHANGE_OPTIONS = { durable: false, autoDelete: false } as const;

/** Attempts of one bind before a failure that is nobody's refusal is reported as temporary. */
const BIND_ATTEMPTS = 4;

/** Raised when a family asks for a key on an exchange no family reads. */
export class UnknownExchangeError extends Error {
  constructor(exchange: string) {
    super(`no family reads exchange "${exchange}" (@ExchangeSubscription)`);
    this.name = 'UnknownExchangeError';
  }
}

/**
 * How the node got to use an exchange on the current connection: `declared` with Kazoo's flags,
 * or `existing` when it exists with other flags and was only checked (binding works whatever
 * the exchange's flags).
 */
export type ExchangeDeclaration = 'declared' | 'existing';

export interface ExchangeBindingStatus {
  readonly exchange: string;
  readonly queue: string;
  /** The node queue exists and is consumed, so bindings can be applied. */
  readonly queueReady: boolean;
  readonly declaration: ExchangeDeclaration | undefined;
  /** Why the exchange could not be declared or checked, while it cannot. */
  readonly problem: string | undefined;
  /** Times the exchange vanished while the node used it and was declared again. */
  readonly redeclarations: number;
}

export interface BoundKeyStatus {
  readonly queue: string;
  readonly exchange: string;
  readonly routingKey: string;
  readonly references: number;
}

export interface UnappliedKey extends BoundKeyStatus {
  readonly reason: string;
}

interface KeyState {
  readonly id: string;
  readonly queue: string;
  readonly exchange: string;
  readonly routingKey: string;
  references: number;
  /** Whether the binding is on the broker, as far as the node knows. */
  bound: boolean;
  /** Why the key is referenced but not bound, while it is. */
  problem: string | undefined;
  /** Broker operations queued or running for this key. */
  operations: number;
  /** Tail of this key's operations: a bind and an unbind of one key never overtake each other. */
  tail: Promise<void>;
}

interface ExchangeState {
  readonly exchange: string;
  readonly queue: string;
  readonly keys: Set<KeyState>;
  queueReady: boolean;
  /**
   * Bumped whenever the bindings of the exchange may have vanished on the broker (queue lost or
   * re-created, exchange deleted): a bind that started under an older generation is not trusted.
   */
  generation: number;
  declaration: Promise<void> | undefined;
  declaredAs: ExchangeDeclaration | undefined;
  problem: string | undefined;
  warnedExistingFlags: boolean;
  redeclarations: number;
}

type BindOutcome = 'bound' | 'deferred';

/**
 * Binds routing keys on the node queues on demand, reference-counted per (exchange, key): the
 * first acquirer binds, the last releaser unbinds.
 *
 * Broker work is ordered per key, never globally: an acquire of keys already bound resolves
 * at once, an acquire of a key whose bind is in flight waits for that key only. Each key's
 * operations converge it to what its count wants when they run, so a re-acquire queued behind
 * a pending unbind ends bound.
 *
 * The binder tells the truth about the broker: a bind the broker refuses rejects that acquire
 * with a `BrokerRefusedError` and keeps no reference. The binding channel, which such a refusal
 * closes, is opened again for the next operation, and operations of other keys that the
 * closing took down with it are retried. While an exchange's queue is not consumed (no
 * connection, consumer being re-established) keys are only recorded; `ExchangeConsumers` calls
 * `queueReady` when the queue is consumed again and every referenced key is bound anew.
 */
@Injectable()
export class QueueBinder
  implements BrokerBindings, OnApplicationBootstrap, BeforeApplicationShutdown
{
  private readonly logger = new Logger(QueueBinder.name);
  private readonly keys = new Map<string, KeyState>();
  private readonly exchanges = new Map<string, ExchangeState>();
  private channel: Promise<Channel> | undefined;
  private readonly checkIntervalMs: number;
  private checkTimer: NodeJS.Timeout | undefined;
  private checking = false;

  constructor(
    @Inject(BrokerConnection) private readonly broker: ChannelSource,
    env: Environment,
  ) {
    this.checkIntervalMs = env.AMQP_EXCHANGE_CHECK_S * 1000;
  }

  onApplicationBootstrap(): void {
    this.broker.watch({
      connected: () => this.forgetConnection(),
      disconnected: () => this.forgetConnection(),
    });
    if (this.checkIntervalMs > 0) {
      this.checkTimer = setInterval(() => {
        this.checkExchanges().catch((error: unknown) =>
          this.logger.warn(`exchange check failed: ${messageOf(error)}`),
        );
      }, this.checkIntervalMs);
      this.checkTimer.unref();
    }
  }

  beforeApplicationShutdown(): void {
    if (this.checkTimer) clearInterval(this.checkTimer);
  }

  registerQueue(exchange: string, queue: string): void {
    this.exchanges.set(exchange, {
      exchange,
      queue,
      keys: new Set(),
      queueReady: false,
      generation: 0,
      declaration: undefined,
      declaredAs: undefined,
      problem: undefined,
      warnedExistingFlags: false,
      redeclarations: 0,
    });
  }

  async acquire(keys: readonly BrokerKey[]): Promise<void> {
    // Resolve every exchange first so a bad key rejects before any reference is taken.
    const exchanges = keys.map((key) => this.exchangeOf(key.exchange));
    const states = keys.map((key, i) => this.stateOf(exchanges[i], key.routingKey));
    const waits: Promise<void>[] = [];
    for (const state of states) {
      state.references++;
      // Already bound and nothing queued for it: nobody else's broker work is waited for.
      if (state.bound && state.operations === 0) continue;
      waits.push(this.converge(state));
    }
    const outcomes = await Promise.allSettled(waits);
    const failure = outcomes.find((o): o is PromiseRejectedResult => o.status === 'rejected');
    if (failure) {
      states.forEach((state) => this.dropReference(state));
      throw failure.reason;
    }
  }

  release(keys: readonly BrokerKey[]): void {
    for (const key of keys) {
      const state = this.keys.get(keyId(key.exchange, key.routingKey));
      if (state && state.references > 0) this.dropReference(state);
    }
  }

  /**
   * The exchange's queue was (re)declared and is consumed: whatever was bound to an earlier
   * incarnation is gone, so every referenced key is bound again. Resolves when all were tried.
   */
  async queueReady(exchange: string): Promise<void> {
    const state = this.exchangeOf(exchange);
    state.queueReady = true;
    this.invalidate(state, undefined);
    await this.declare(state).catch(() => undefined);
    const referenced = [...state.keys].filter((key) => key.references > 0);
    const outcomes = await Promise.allSettled(referenced.map((key) => this.converge(key)));
    const failed = outcomes.filter((o) => o.status === 'rejected').length;
    if (referenced.length > 0) {
      this.logger.log(
        `bound ${referenced.length - failed} key(s) on ${exchange}${failed > 0 ? `, ${failed} refused` : ''}`,
      );
    }
  }

  /** The exchange's queue is gone or no longer consumed, and its bindings with it. */
  queueLost(exchange: string, reason: string): void {
    const state = this.exchangeOf(exchange);
    state.queueReady = false;
    this.invalidate(state, `the queue of ${exchange} is not consumed: ${reason}`);
  }

  /** Keys currently wanted (bound, or to be bound once the queue is consumed). */
  boundKeys(): BoundKeyStatus[] {
    return [...this.keys.values()]
      .filter((key) => key.references > 0)
      .map(({ queue, exchange, routingKey, references }) => ({
        queue,
        exchange,
        routingKey,
        references,
      }));
  }

  /** Keys that subscriptions hold but that are not bound on the broker, with the reason. */
  unappliedKeys(): UnappliedKey[] {
    return [...this.keys.values()]
      .filter((key) => key.references > 0 && !key.bound && key.problem !== undefined)
      .map(({ queue, exchange, routingKey, references, problem }) => ({
        queue,
        exchange,
        routingKey,
        references,
        reason: problem as string,
      }));
  }

  exchangeStatus(): ExchangeBindingStatus[] {
    return [...this.exchanges.values()].map((state) => ({
      exchange: state.exchange,
      queue: state.queue,
      queueReady: state.queueReady,
      declaration: state.declaredAs,
      problem: state.problem,
      redeclarations: state.redeclarations,
    }));
  }

  /**
   * Passively checks every exchange the node uses. An exchange deleted on the broker takes its
   * bindings along and nothing else tells the node; found missing, it is declared again with
   * Kazoo's flags and its keys are bound again, as Kazoo's own listeners would.
   */
  async checkExchanges(): Promise<void> {
    if (this.checking || !this.broker.isConnected) return;
    this.checking = true;
    let probe: Channel | undefined;
    try {
      for (const state of this.exchanges.values()) {
        if (!state.queueReady || state.declaredAs === undefined) continue;
        const generation = state.generation;
        probe ??= await this.broker.openChannel('exchange check');
        try {
          await probe.checkExchange(state.exchange);
        } catch (error) {
          probe = undefined;
          const refusal = refusalOf(error);
          if (refusal && isMissingExchange(refusal, state.exchange)) {
            this.exchangeVanished(state, generation, refusal.reason);
          } else if (!refusal) {
            throw error;
          }
        }
      }
    } finally {
      this.checking = false;
      if (probe) await closeQuietly(probe);
    }
  }

  private exchangeOf(exchange: string): ExchangeState {
    const state = this.exchanges.get(exchange);
    if (!state) throw new UnknownExchangeError(exchange);
    return state;
  }

  private stateOf(exchange: ExchangeState, routingKey: string): KeyState {
    const id = keyId(exchange.exchange, routingKey);
    let state = this.keys.get(id);
    if (!state) {
      state = {
        id,
        queue: exchange.queue,
        exchange: exchange.exchange,
        routingKey,
        references: 0,
        bound: false,
        problem: undefined,
        operations: 0,
        tail: Promise.resolve(),
      };
      this.keys.set(id, state);
      exchange.keys.add(state);
    }
    return state;
  }

  private dropReference(state: KeyState): void {
    if (--state.references > 0) return;
    this.converge(state).catch((error: unknown) =>
      this.logger.warn(`unbind ${describe(state)} failed: ${messageOf(error)}`),
    );
  }

  /** Queues an operation that brings `state` to what its count wants when the operation runs. */
  private converge(state: KeyState): Promise<void> {
    state.operations++;
    const run = async (): Promise<void> => {
      if (state.references > 0 && !state.bound) await this.bind(state);
      else if (state.references === 0 && state.bound) await this.unbind(state);
    };
    const result = state.tail.then(run);
    state.tail = result.catch(() => undefined);
    return result.finally(() => {
      state.operations--;
      this.forgetIfIdle(state);
    });
  }

  private forgetIfIdle(state: KeyState): void {
    if (state.references > 0 || state.bound || state.operations > 0) return;
    this.keys.delete(state.id);
    this.exchanges.get(state.exchange)?.keys.delete(state);
  }

  private async bind(key: KeyState): Promise<BindOutcome> {
    const exchange = this.exchangeOf(key.exchange);
    let lastProblem = 'no attempt made';
    for (let attempt = 1; attempt <= BIND_ATTEMPTS; attempt++) {
      if (!this.broker.isConnected || !exchange.queueReady) {
        key.problem = exchange.queueReady
          ? 'not connected to RabbitMQ'
          : `the queue of ${exchange.exchange} is not consumed yet`;
        return 'deferred';
      }
      const generation = exchange.generation;
      try {
        await this.declare(exchange);
        const channel = await this.bindingChannel();
        await channel.bindQueue(key.queue, key.exchange, key.routingKey);
      } catch (error) {
        const refusal = refusalOf(error);
        if (!refusal) {
          // The channel went down under this bind (someone else's refusal, a connection drop):
          // nothing was wrong with this key, so it is tried again on a fresh channel.
          lastProblem = messageOf(error);
          continue;
        }
        if (isMissingExchange(refusal, exchange.exchange)) {
          this.exchangeVanished(exchange, generation, refusal.reason);
          lastProblem = refusal.reason;
          continue;
        }
        if (refusal.code === NOT_FOUND) {
          // The queue itself is gone; its consumer's cancellation re-creates it and re-binds.
          key.problem = refusal.reason;
          return 'deferred';
        }
        throw refused(key, refusal);
      }
      if (exchange.generation !== generation) {
        lastProblem = 'the bindings of the exchange were lost while binding';
        continue;
      }
      key.bound = true;
      key.problem = undefined;
      return 'bound';
    }
    key.problem = lastProblem;
    throw new BrokerRefusedError(
      `RabbitMQ could not bind ${key.routingKey} on exchange ${key.exchange}: ${lastProblem}`,
      true,
    );
  }

  private async unbind(key: KeyState): Promise<void> {
    const exchange = this.exchangeOf(key.exchange);
    for (let attempt = 1; attempt <= BIND_ATTEMPTS; attempt++) {
      // Without a consumed queue there is no binding left to remove.
      if (!this.broker.isConnected || !exchange.queueReady) break;
      try {
        const channel = await this.bindingChannel();
        await channel.unbindQueue(key.queue, key.exchange, key.routingKey);
        break;
      } catch (error) {
        const refusal = refusalOf(error);
        if (!refusal) continue;
        // 404: the exchange or queue is gone, and the binding with it.
        if (refusal.code !== NOT_FOUND) {
          this.logger.warn(`RabbitMQ refused to unbind ${describe(key)}: ${refusal.reason}`);
        }
        break;
      }
    }
    key.bound = false;
    key.problem = undefined;
  }

  /**
   * Declares the exchange once per connection with Kazoo's flags. One declared with other
   * flags (406) is used as it is, after a passive check: bindings do not depend on its flags.
   * Declarations run on a short-lived channel of their own, so a 406 never closes the binding
   * channel under other keys' binds.
   */
  private declare(exchange: ExchangeState): Promise<void> {
    if (exchange.declaration) return exchange.declaration;
    const declaration: Promise<void> = this.declareOnce(exchange).then(
      () => {
        exchange.problem = undefined;
      },
      (error: unknown) => {
        // Only this attempt is forgotten: a newer one (after a reconnect) stays.
        if (exchange.declaration === declaration) exchange.declaration = undefined;
        const refusal = refusalOf(error);
        exchange.problem = refusal ? refusal.reason : messageOf(error);
        throw error;
      },
    );
    exchange.declaration = declaration;
    return declaration;
  }

  private async declareOnce(exchange: ExchangeState): Promise<void> {
    const name = exchange.exchange;
    const channel = await this.broker.openChannel(`declare ${name}`);
    try {
      await channel.assertExchange(name, 'topic', KAZOO_EXCHANGE_OPTIONS);
      exchange.declaredAs = 'declared';
      await closeQuietly(channel);
      return;
    } catch (error) {
      if (refusalOf(error)?.code !== PRECONDITION_FAILED) {
        await closeQuietly(channel);
        throw error;
      }
      if (!exchange.warnedExistingFlags) {
        exchange.warnedExistingFlags = true;
        this.logger.warn(
          `exchange ${name} exists with flags other than Kazoo's (${refusalOf(error)?.reason}); using it as it is`,
        );
      }
    }
    const check = await this.broker.openChannel(`check ${name}`);
    try {
      await check.checkExchange(name);
      exchange.declaredAs = 'existing';
    } finally {
      await closeQuietly(check);
    }
  }

  /** The exchange was deleted on the broker: declare it again and bind all its keys anew. */
  private exchangeVanished(exchange: ExchangeState, generation: number, reason: string): void {
    if (exchange.generation !== generation) return; // someone noticed already
    exchange.redeclarations++;
    this.invalidate(exchange, `exchange ${exchange.exchange} vanished: ${reason}`);
    exchange.declaration = undefined;
    exchange.declaredAs = undefined;
    const referenced = [...exchange.keys].filter((key) => key.references > 0);
    this.logger.warn(
      `exchange ${exchange.exchange} vanished (${reason}); declaring it again and re-binding ${referenced.length} key(s)`,
    );
    this.declare(exchange).catch((error: unknown) =>
      this.logger.warn(`declaring ${exchange.exchange} again failed: ${messageOf(error)}`),
    );
    for (const key of referenced) {
      this.converge(key).catch((error: unknown) =>
        this.logger.warn(`re-binding ${describe(key)} failed: ${messageOf(error)}`),
      );
    }
  }

  /** Whatever the node bound on the exchange may be gone. */
  private invalidate(exchange: ExchangeState, reason: string | undefined): void {
    exchange.generation++;
    for (const key of exchange.keys) {
      key.bound = false;
      key.problem = key.references > 0 ? reason : undefined;
    }
  }

  /** The binding channel, opened again as soon as the previous one closed. */
  private bindingChannel(): Promise<Channel> {
    if (this.channel) return this.channel;
    const opening = this.broker.openChannel('binding').then((channel) => {
      channel.on('close', () => {
        if (this.channel === opening) this.channel = undefined;
      });
      return channel;
    });
    opening.catch(() => {
      if (this.channel === opening) this.channel = undefined;
    });
    this.channel = opening;
    return opening;
  }

  private forgetConnection(): void {
    this.channel = undefined;
    for (const exchange of this.exchanges.values()) {
      exchange.declaration = undefined;
      exchange.declaredAs = undefined;
    }
  }
}

function keyId(exchange: string, routingKey: string): string {
  return `${exchange}\u0000${routingKey}`;
}

function describe(key: Pick<KeyState, 'queue' | 'exchange' | 'routingKey'>): string {
  return `${key.exchange}::${key.routingKey} -> ${key.queue}`;
}

function refused(key: KeyState, refusal: BrokerRefusal): BrokerRefusedError {
  // Access refused stays refused until an operator changes permissions; anything else (an
  // exchange that could not be used right now) may pass.
  const temporary = refusal.code !== ACCESS_REFUSED;
  return new BrokerRefusedError(
    `RabbitMQ refused to bind ${key.routingKey} on exchange ${key.exchange}: ${refusal.reason}`,
    temporary,
  );
}

async function closeQuietly(channel: Channel): Promise<void> {
  try {
    await channel.close();
  } catch {
    // Already closed by the broker or with the connection.
  }
}
