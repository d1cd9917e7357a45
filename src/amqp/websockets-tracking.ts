import { randomBytes } from 'node:crypto';
import {
  BeforeApplicationShutdown,
  Injectable,
  Logger,
  OnApplicationBootstrap,
} from '@nestjs/common';
import type { Channel, ConsumeMessage } from 'amqplib';
import { Environment } from '../config/environment';
import { NodeIdentity } from '../config/node-identity';
import {
  SocketListing,
  kazooShaped,
  type ScopedSocketDescription,
  type SocketDescription,
} from '../core/tracking/socket-listing';
import { BLACKHOLE_VERSION } from '../http/version';
import { BrokerConnection } from './broker-connection';
import { messageOf } from './broker-errors';
import {
  NODE_QUEUE_OPTIONS,
  OversizeMessage,
  deserializeKazooMessage,
} from './family-subscription';
import { KAZOO_EXCHANGE_OPTIONS } from './queue-binder';
import { FIRST_RETRY_MS, ReconnectBackoff } from './reconnect-backoff';

/** Kazoo's exchange for configuration and tracking requests, and the request's key there. */
export const SYSCONF_EXCHANGE = 'sysconf';
export const WEBSOCKETS_GET_KEY = 'websockets.get';
/** Kazoo answers a request on this direct exchange, keyed by the requester's queue name. */
export const TARGETED_EXCHANGE = 'targeted';

/**
 * Blackhole's own request headers, which Kazoo never sends: `Include-Accounts: true` asks for
 * each socket's accounts (node-to-node only); `Subscribed-Account-ID` also matches sockets
 * subscribed to that account, whoever's token subscribed them.
 */
const INCLUDE_ACCOUNTS = 'Include-Accounts';
const SUBSCRIBED_ACCOUNT_ID = 'Subscribed-Account-ID';

/** Kazoo 4.3's `websockets` `get_req` (kapi_websockets.hrl), as read from the wire. */
export interface WebsocketsGetRequest {
  readonly msgId: string;
  /** The requester's queue: the answer goes there through `targeted`. */
  readonly serverId: string;
  readonly accountId: string;
  readonly authAccountId?: string;
  readonly socketId?: string;
  readonly subscribedAccountId?: string;
  readonly includeAccounts: boolean;
}

/** Reads a `get_req`; `undefined` for anything else, which is dropped. */
export function parseGetRequest(body: unknown): WebsocketsGetRequest | undefined {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) return undefined;
  const fields = body as Record<string, unknown>;
  if (fields['Event-Category'] !== 'websockets' || fields['Event-Name'] !== 'get_req') {
    return undefined;
  }
  const msgId = textOf(fields['Msg-ID']);
  const serverId = textOf(fields['Server-ID']);
  const accountId = textOf(fields['Account-ID']);
  if (msgId === undefined || serverId === undefined || accountId === undefined) return undefined;
  return {
    msgId,
    serverId,
    accountId,
    authAccountId: textOf(fields['Auth-Account-ID']),
    socketId: textOf(fields['Socket-ID']),
    subscribedAccountId: textOf(fields[SUBSCRIBED_ACCOUNT_ID]),
    includeAccounts: fields[INCLUDE_ACCOUNTS] === true || fields[INCLUDE_ACCOUNTS] === 'true',
  };
}

function textOf(value: unknown): string | undefined {
  return typeof value === 'string' && value.length > 0 && value.length <= 512 ? value : undefined;
}

/** What the node answers to one request: Kazoo's `Data` (one object when a socket id was asked). */
export function answerData(
  listing: SocketListing,
  request: WebsocketsGetRequest,
): SocketDescription[] | SocketDescription {
  const found = listing.list({
    authAccountIds: [request.accountId, ...(request.authAccountId ? [request.authAccountId] : [])],
    subscribedAccountIds: request.subscribedAccountId ? [request.subscribedAccountId] : [],
    socketId: request.socketId,
  });
  const shaped = request.includeAccounts ? found : found.map(kazooShaped);
  if (request.socketId === undefined) return shaped;
  // As blackhole_tracking: the socket itself when found, an empty list when not.
  return shaped[0] ?? [];
}

export class FleetUnavailableError extends Error {
  constructor(reason: string) {
    super(`the fleet cannot be asked: ${reason}`);
    this.name = 'FleetUnavailableError';
  }
}

export interface FleetQuery {
  readonly accountId: string;
  readonly socketId?: string;
}

/**
 * Kazoo 4.3's socket tracking on the broker (blackhole_tracking): answers `websockets.get` on
 * `sysconf` for this node's sockets, so Kazoo's Crossbar lists a Blackhole fleet; and asks the
 * same question of the whole fleet (this node included) for `GET /v2/accounts/{id}/websockets`.
 *
 * Nodes are not known in advance, so a fleet question collects answers for
 * `FLEET_LISTING_TIMEOUT_MS` and then returns what came.
 */
@Injectable()
export class WebsocketsTracking implements OnApplicationBootstrap, BeforeApplicationShutdown {
  private readonly logger = new Logger(WebsocketsTracking.name);
  private readonly requestQueue: string;
  private readonly replyQueue: string;
  private readonly backoff: ReconnectBackoff;
  private readonly pending = new Map<string, ScopedSocketDescription[]>();
  private channel: Channel | undefined;
  private starting = false;
  private stopping = false;
  private retry: NodeJS.Timeout | undefined;

  constructor(
    private readonly broker: BrokerConnection,
    private readonly listing: SocketListing,
    private readonly node: NodeIdentity,
    private readonly env: Environment,
  ) {
    this.requestQueue = node.queueName(SYSCONF_EXCHANGE);
    this.replyQueue = node.queueName(TARGETED_EXCHANGE);
    this.backoff = new ReconnectBackoff(FIRST_RETRY_MS, env.AMQP_RECONNECT_S * 1000);
  }

  onApplicationBootstrap(): void {
    this.broker.watch({
      connected: () => {
        this.backoff.reset();
        this.start();
      },
      disconnected: () => this.lost(),
    });
  }

  beforeApplicationShutdown(): void {
    this.stopping = true;
    if (this.retry) clearTimeout(this.retry);
  }

  get answering(): boolean {
    return this.channel !== undefined;
  }

  /** Every node's sockets that match, merged; waits the whole listing window. */
  async gather(query: FleetQuery): Promise<ScopedSocketDescription[]> {
    const channel = this.channel;
    if (!channel) throw new FleetUnavailableError(this.broker.disconnectReason ?? 'not consuming');
    const msgId = randomBytes(16).toString('hex');
    const collected: ScopedSocketDescription[] = [];
    this.pending.set(msgId, collected);
    try {
      const request = {
        'Event-Category': 'websockets',
        'Event-Name': 'get_req',
        'Msg-ID': msgId,
        'Server-ID': this.replyQueue,
        'Account-ID': query.accountId,
        [SUBSCRIBED_ACCOUNT_ID]: query.accountId,
        [INCLUDE_ACCOUNTS]: true,
        ...(query.socketId !== undefined ? { 'Socket-ID': query.socketId } : {}),
        ...this.defaultHeaders(),
      };
      channel.publish(SYSCONF_EXCHANGE, WEBSOCKETS_GET_KEY, Buffer.from(JSON.stringify(request)), {
        contentType: 'application/json',
      });
      await new Promise((resolve) => setTimeout(resolve, this.env.FLEET_LISTING_TIMEOUT_MS));
    } finally {
      this.pending.delete(msgId);
    }
    const seen = new Set<string>();
    return collected.filter((socket) => {
      if (seen.has(socket.websocket_session_id)) return false;
      seen.add(socket.websocket_session_id);
      return true;
    });
  }

  private start(): void {
    if (this.starting || this.channel || this.stopping || !this.broker.isConnected) return;
    this.starting = true;
    this.setUp()
      .catch((error: unknown) => {
        this.logger.warn(`websockets tracking not answering: ${messageOf(error)}`);
        this.scheduleRestart();
      })
      .finally(() => (this.starting = false))
      .catch(() => undefined);
  }

  private async setUp(): Promise<void> {
    const channel = await this.broker.openChannel('websockets tracking');
    channel.on('close', () => {
      if (this.channel !== channel) return;
      this.lost();
      this.scheduleRestart();
    });
    try {
      await channel.assertExchange(SYSCONF_EXCHANGE, 'topic', KAZOO_EXCHANGE_OPTIONS);
      await channel.assertExchange(TARGETED_EXCHANGE, 'direct', KAZOO_EXCHANGE_OPTIONS);
      await channel.assertQueue(this.requestQueue, NODE_QUEUE_OPTIONS);
      await channel.bindQueue(this.requestQueue, SYSCONF_EXCHANGE, WEBSOCKETS_GET_KEY);
      await channel.assertQueue(this.replyQueue, NODE_QUEUE_OPTIONS);
      await channel.bindQueue(this.replyQueue, TARGETED_EXCHANGE, this.replyQueue);
      await channel.consume(this.requestQueue, (message) => this.onRequest(channel, message), {
        noAck: true,
      });
      await channel.consume(this.replyQueue, (message) => this.onReply(message), { noAck: true });
    } catch (error) {
      await channel.close().catch(() => undefined);
      throw error;
    }
    this.channel = channel;
    this.backoff.reset();
    this.logger.log(`answering ${WEBSOCKETS_GET_KEY} on ${SYSCONF_EXCHANGE}`);
  }

  private lost(): void {
    const channel = this.channel;
    this.channel = undefined;
    channel?.close().catch(() => undefined);
  }

  private scheduleRestart(): void {
    if (this.retry || this.stopping || !this.broker.isConnected) return;
    this.retry = setTimeout(() => {
      this.retry = undefined;
      this.start();
    }, this.backoff.next());
    this.retry.unref();
  }

  private onRequest(channel: Channel, message: ConsumeMessage | null): void {
    if (!message) return;
    const request = parseGetRequest(this.read(message));
    if (!request) {
      this.logger.debug(`ignored a message on ${WEBSOCKETS_GET_KEY} that is no get_req`);
      return;
    }
    const answer = {
      'Event-Category': 'websockets',
      'Event-Name': 'get_resp',
      'Msg-ID': request.msgId,
      Data: answerData(this.listing, request),
      ...this.defaultHeaders(),
    };
    try {
      channel.publish(TARGETED_EXCHANGE, request.serverId, Buffer.from(JSON.stringify(answer)), {
        contentType: 'application/json',
      });
    } catch (error) {
      this.logger.warn(`could not answer ${WEBSOCKETS_GET_KEY}: ${messageOf(error)}`);
    }
  }

  private onReply(message: ConsumeMessage | null): void {
    if (!message) return;
    const body = this.read(message);
    if (typeof body !== 'object' || body === null) return;
    const fields = body as Record<string, unknown>;
    const collected = this.pending.get(String(fields['Msg-ID']));
    if (!collected || fields['Event-Name'] !== 'get_resp') return;
    const data = fields.Data;
    for (const item of Array.isArray(data) ? data : [data]) {
      if (isScopedDescription(item)) collected.push(item);
    }
  }

  private read(message: ConsumeMessage): unknown {
    const body = deserializeKazooMessage(message.content, message, this.env.AMQP_MAX_MESSAGE_BYTES);
    return body instanceof OversizeMessage ? undefined : body;
  }

  /** Kazoo's default headers, naming the node by its public id, never its host. */
  private defaultHeaders(): Record<string, string> {
    return {
      'App-Name': 'blackhole',
      'App-Version': BLACKHOLE_VERSION,
      Node: this.node.publicId,
      'Server-ID': this.replyQueue,
    };
  }
}

/** A reply item from another node: trusted as far as the broker is, but checked for shape. */
function isScopedDescription(value: unknown): value is ScopedSocketDescription {
  if (typeof value !== 'object' || value === null) return false;
  const item = value as Record<string, unknown>;
  return (
    typeof item.websocket_session_id === 'string' &&
    Array.isArray(item.bindings) &&
    Array.isArray(item.account_ids) &&
    item.account_ids.every((account) => typeof account === 'string')
  );
}
