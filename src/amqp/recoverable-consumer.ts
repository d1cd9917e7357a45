import type { Logger } from '@nestjs/common';
import type { Channel, ConsumeMessage } from 'amqplib';
import type { BrokerConnection } from './broker-connection';
import { messageOf } from './broker-errors';
import { FIRST_RETRY_MS, ReconnectBackoff } from './reconnect-backoff';

/** What one consumer does each time it is set up, and how it is named in logs. */
export interface ConsumerRecipe {
  /** Names it in logs and in `/health`'s reasons: `the consumer of callevt`, `the replay log`. */
  readonly name: string;
  /**
   * Declares what the consumer needs and consumes on `channel`, which already has its prefetch.
   * `cancelled` is for the broker's cancellation (a null delivery). Resolves with what is now
   * consumed, for the log.
   */
  setUp(channel: Channel, cancelled: (reason: string) => void): Promise<string>;
  /** Once consuming again, e.g. to bind the keys the lost queue had. */
  ready?(): Promise<void>;
  /** The consumer is gone, e.g. so its queue's bindings are known to be gone with it. */
  lost?(reason: string): void;
}

/** What `/health` shows of one consumer. */
export interface ConsumerState {
  readonly consuming: boolean;
  /** Why it does not consume, while it does not. */
  readonly reason: string | undefined;
  /** Times it was lost while connected and set up again. */
  readonly recoveries: number;
}

/**
 * One consumer on a raw channel of its own that comes back by itself: set up when the
 * connection comes up, and again with backoff when it is lost (channel closed, queue or stream
 * deleted, consumer cancelled) while the connection stays. golevelup's subscribers ignore a
 * broker's cancellation, which is why the node's consumers do not use them.
 *
 * It also batches acknowledgements: deliveries are handled synchronously and in order, so one
 * `ack(last, allUpTo)` per turn of the event loop (or per half prefetch) settles them all and
 * saves the broker and the node a frame per message.
 */
export class RecoverableConsumer {
  private readonly backoff: ReconnectBackoff;
  /** Bumped when the consumer is lost, so late events of its channel are ignored. */
  private incarnation = 0;
  private channel: Channel | undefined;
  private consumingNow = false;
  private starting = false;
  private stopping = false;
  private reason: string | undefined = 'not connected yet';
  private retry: NodeJS.Timeout | undefined;
  /** Lost while the connection stayed up: the next successful start is a recovery. */
  private recovering = false;
  private recoveries = 0;
  /**
   * The last delivery handled and not acknowledged yet, with its channel: acking it with
   * `allUpTo` settles every one before it. Delivery tags belong to their channel.
   */
  private unacked: { readonly channel: Channel; readonly message: ConsumeMessage } | undefined;
  private unackedCount = 0;

  constructor(
    private readonly broker: BrokerConnection,
    private readonly recipe: ConsumerRecipe,
    private readonly prefetch: number,
    retryCapMs: number,
    private readonly logger: Logger,
  ) {
    this.backoff = new ReconnectBackoff(FIRST_RETRY_MS, retryCapMs);
  }

  get consuming(): boolean {
    return this.consumingNow;
  }

  state(): ConsumerState {
    return {
      consuming: this.consumingNow,
      reason: this.consumingNow ? undefined : this.reason,
      recoveries: this.recoveries,
    };
  }

  /** Consumes whenever the connection is up, from now on: never during bootstrap itself. */
  follow(): void {
    this.broker.watch({
      connected: () => {
        this.cancelRetry();
        this.backoff.reset();
        this.start();
      },
      disconnected: (reason) => this.lost(this.incarnation, `connection lost: ${reason}`),
    });
  }

  /** A stopping node takes no more deliveries: closing the channel cancels the consumer. */
  async stop(): Promise<void> {
    this.stopping = true;
    this.cancelRetry();
    const channel = this.channel;
    this.channel = undefined;
    if (channel) await closeQuietly(channel);
  }

  /** Acknowledges a handled delivery, with the next ones of this turn of the event loop. */
  acknowledge(channel: Channel, message: ConsumeMessage): void {
    if (this.unacked && this.unacked.channel !== channel) this.flushAcks();
    const first = this.unacked === undefined;
    this.unacked = { channel, message };
    this.unackedCount++;
    if (this.unackedCount >= Math.max(1, this.prefetch / 2)) this.flushAcks();
    else if (first) setImmediate(() => this.flushAcks());
  }

  /** Rejects one delivery without requeue (requeued, it would come back forever). */
  reject(channel: Channel, message: ConsumeMessage): void {
    // Everything before it is settled first, so the batch ack never covers this one.
    this.flushAcks();
    settle(() => channel.nack(message, false, false));
  }

  private flushAcks(): void {
    const last = this.unacked;
    if (!last) return;
    this.unacked = undefined;
    this.unackedCount = 0;
    // On a channel that closed meanwhile the deliveries died with it: nothing to acknowledge.
    settle(() => last.channel.ack(last.message, true));
  }

  private start(): void {
    if (this.starting || this.consumingNow || this.stopping || !this.broker.isConnected) return;
    this.starting = true;
    const incarnation = this.incarnation;
    this.consume(incarnation)
      .catch((error: unknown) => this.lost(incarnation, messageOf(error)))
      .finally(() => {
        this.starting = false;
        // Lost while starting: its retry may have found the start still running.
        if (!this.consumingNow) this.scheduleRestart();
      })
      .catch((error: unknown) => this.logger.error(`${this.recipe.name}: ${messageOf(error)}`));
  }

  private async consume(incarnation: number): Promise<void> {
    const channel = await this.broker.openChannel(this.recipe.name);
    // amqplib tells why the broker closed a channel in 'error', just before 'close'; /health
    // should say it (ACCESS_REFUSED, NOT_FOUND, …), not only that the channel closed.
    let closedBecause: string | undefined;
    channel.on('error', (error: unknown) => (closedBecause = messageOf(error)));
    channel.on('close', () =>
      this.lost(
        incarnation,
        closedBecause === undefined ? 'its channel closed' : `its channel closed: ${closedBecause}`,
      ),
    );
    let consumed: string;
    try {
      await channel.prefetch(this.prefetch);
      consumed = await this.recipe.setUp(channel, (reason) => this.lost(incarnation, reason));
    } catch (error) {
      await closeQuietly(channel);
      throw error;
    }
    if (this.incarnation !== incarnation) {
      await closeQuietly(channel);
      return;
    }
    if (this.recovering) this.recoveries++;
    this.recovering = false;
    this.channel = channel;
    this.consumingNow = true;
    this.reason = undefined;
    this.backoff.reset();
    this.logger.log(`consuming ${consumed}`);
    await this.recipe.ready?.();
  }

  /** The consumer of `incarnation` is gone, and everything its channel held with it. */
  private lost(incarnation: number, reason: string): void {
    if (this.incarnation !== incarnation) return;
    this.incarnation++;
    const channel = this.channel;
    const was = this.consumingNow;
    this.channel = undefined;
    this.consumingNow = false;
    this.reason = reason;
    this.recovering = this.broker.isConnected;
    this.unacked = undefined;
    this.unackedCount = 0;
    this.recipe.lost?.(reason);
    if (channel) closeQuietly(channel).catch(() => undefined);
    if (this.stopping) return;
    if (was) this.logger.warn(`${this.recipe.name} stopped: ${reason}`);
    this.scheduleRestart();
  }

  private scheduleRestart(): void {
    if (this.retry || this.starting || this.consumingNow) return;
    if (this.stopping || !this.broker.isConnected) return;
    const delay = this.backoff.next();
    this.logger.warn(`setting up ${this.recipe.name} again in ${delay} ms (${this.reason})`);
    this.retry = setTimeout(() => {
      this.retry = undefined;
      this.start();
    }, delay);
    this.retry.unref();
  }

  private cancelRetry(): void {
    if (this.retry) clearTimeout(this.retry);
    this.retry = undefined;
  }
}

/** Acks and nacks throw once the channel is closed; the delivery died with it then. */
export function settle(acknowledge: () => void): void {
  try {
    acknowledge();
  } catch {
    // Channel closed: nothing left to acknowledge.
  }
}

export async function closeQuietly(channel: Channel): Promise<void> {
  try {
    await channel.close();
  } catch {
    // Already closed by the broker or with the connection.
  }
}
