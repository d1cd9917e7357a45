import {
  BeforeApplicationShutdown,
  Injectable,
  Logger,
  OnApplicationShutdown,
  OnModuleInit,
} from '@nestjs/common';
import { AmqpConnection } from '@golevelup/nestjs-rabbitmq';
import type { Channel, ChannelModel } from 'amqplib';
import { Environment } from '../config/environment';
import { FIRST_RETRY_MS, ReconnectBackoff } from './reconnect-backoff';
import { describeConnectFailure, messageOf } from './broker-errors';
import { redactCredentials } from '../config/environment';

/** While attempts keep failing for the same cause, it is repeated at warn this often. */
const REPEAT_WARNING_MS = 30_000;

/** Told when the node's broker connection comes and goes. */
export interface ConnectionWatcher {
  connected(): void;
  disconnected(reason: string): void;
}

/** Raw channels on the node's one broker connection; what `QueueBinder` needs of it. */
export interface ChannelSource {
  readonly isConnected: boolean;
  /** Opens a channel on the current connection; rejects while there is none. */
  openChannel(purpose: string): Promise<Channel>;
  /** Calls `connected` at once when the connection is already up. */
  watch(watcher: ConnectionWatcher): void;
  /** True once the application is closing: channel failures from then on are expected. */
  readonly stopping: boolean;
}

export class BrokerUnavailableError extends Error {
  constructor() {
    super('not connected to RabbitMQ');
    this.name = 'BrokerUnavailableError';
  }
}

/**
 * The node's RabbitMQ connection as golevelup owns it (amqp-connection-manager underneath),
 * seen through raw amqplib channels. Channels opened here are not golevelup's managed channels
 * on purpose: a managed channel that the broker closes stays dead until the whole connection
 * reconnects, and its consumers ignore cancellation.
 *
 * It also paces reconnection: amqp-connection-manager waits `reconnectTimeInSeconds` before
 * each attempt and reads that field anew every time, so it is set here from a backoff that
 * starts at 100 ms after a drop and doubles to `AMQP_RECONNECT_S` while attempts fail.
 */
@Injectable()
export class BrokerConnection
  implements ChannelSource, OnModuleInit, BeforeApplicationShutdown, OnApplicationShutdown
{
  private readonly logger = new Logger('RabbitMQ');
  private readonly backoff: ReconnectBackoff;
  private readonly watchers: ConnectionWatcher[] = [];
  private connection: ChannelModel | undefined;
  private lostReason: string | undefined = 'not connected yet';
  private closing = false;
  private readonly brokerUrl: string;
  /** The current run of failed attempts: its cause, size and last warning. */
  private failures: { cause: string; attempts: number; warnedAt: number } | undefined;

  constructor(
    private readonly amqp: AmqpConnection,
    env: Environment,
  ) {
    this.backoff = new ReconnectBackoff(FIRST_RETRY_MS, env.AMQP_RECONNECT_S * 1000);
    this.brokerUrl = redactCredentials(env.AMQP_URL) ?? '';
  }

  onModuleInit(): void {
    this.logger.log(`connecting to RabbitMQ at ${this.brokerUrl}`);
    const manager = this.amqp.managedConnection;
    manager.on('connect', () => this.onConnect());
    manager.on('disconnect', ({ err }: { err?: Error }) => this.onDisconnect(err));
    manager.on('connectFailed', ({ err }: { err?: Error }) => this.onConnectFailed(err));
    if (manager.connection) this.onConnect();
  }

  beforeApplicationShutdown(): void {
    this.closing = true;
  }

  async onApplicationShutdown(): Promise<void> {
    this.watchers.length = 0;
    await this.amqp.close();
  }

  get isConnected(): boolean {
    return this.connection !== undefined;
  }

  get stopping(): boolean {
    return this.closing;
  }

  /** Why the node is not connected, while it is not. */
  get disconnectReason(): string | undefined {
    return this.lostReason;
  }

  watch(watcher: ConnectionWatcher): void {
    this.watchers.push(watcher);
    if (this.connection) watcher.connected();
  }

  async openChannel(purpose: string): Promise<Channel> {
    const connection = this.connection;
    if (!connection) throw new BrokerUnavailableError();
    const channel = await connection.createChannel();
    // amqplib emits 'error' before 'close' when the broker closes a channel; an unheard
    // 'error' would crash the process. Owners react to 'close'.
    channel.on('error', (error: Error) =>
      this.logger.debug(`${purpose} channel: ${error.message}`),
    );
    return channel;
  }

  private onConnect(): void {
    const connection = this.amqp.managedConnection.connection;
    if (!connection || connection === this.connection) return;
    this.connection = connection;
    this.lostReason = undefined;
    this.backoff.reset();
    this.setNextDelay(this.backoff.firstMs);
    const attempts = this.failures ? ` after ${this.failures.attempts} failed attempts` : '';
    this.failures = undefined;
    this.logger.log(`connected to RabbitMQ at ${this.brokerUrl}${attempts}`);
    for (const watcher of [...this.watchers]) watcher.connected();
  }

  private onDisconnect(error: Error | undefined): void {
    this.connection = undefined;
    this.lostReason = error ? messageOf(error) : 'connection closed';
    if (this.closing) return;
    const delay = this.backoff.next();
    this.setNextDelay(delay);
    this.logger.warn(
      `lost the connection to RabbitMQ (${this.lostReason}); reconnecting in ${delay} ms`,
    );
    for (const watcher of [...this.watchers]) watcher.disconnected(this.lostReason);
  }

  /**
   * Says why, once per cause: a broker that stays down for an hour writes a line per
   * `REPEAT_WARNING_MS`, not one per attempt; the rest go to debug.
   */
  private onConnectFailed(error: Error | undefined): void {
    const cause = error ? describeConnectFailure(error) : 'connection failed';
    this.lostReason = cause;
    if (this.closing) return;
    const delay = this.backoff.next();
    this.setNextDelay(delay);
    const now = Date.now();
    const streak = this.failures;
    if (streak?.cause === cause) {
      streak.attempts += 1;
      if (now - streak.warnedAt < REPEAT_WARNING_MS) {
        this.logger.debug(`could not connect to RabbitMQ (${cause}); next attempt in ${delay} ms`);
        return;
      }
      streak.warnedAt = now;
      this.logger.warn(
        `still cannot connect to RabbitMQ at ${this.brokerUrl} after ${streak.attempts} attempts (${cause}); retrying every ${delay} ms at most`,
      );
      return;
    }
    this.failures = { cause, attempts: (streak?.attempts ?? 0) + 1, warnedAt: now };
    this.logger.warn(
      `could not connect to RabbitMQ at ${this.brokerUrl}: ${cause}; next attempt in ${delay} ms`,
    );
  }

  private setNextDelay(ms: number): void {
    this.amqp.managedConnection.reconnectTimeInSeconds = ms / 1000;
  }
}
