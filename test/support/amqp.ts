import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { connect, type Channel, type ChannelModel } from 'amqplib';
import { SYSCONF_EXCHANGE, TARGETED_EXCHANGE } from '../../src/amqp/websockets-tracking';

const run = promisify(execFile);

export const AMQP_URL = process.env.AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672';

/**
 * Deletes a replay log (`REPLAY_STREAM`) and its epoch stream: streams are durable and would
 * outlive the test on the shared broker.
 */
export async function deleteReplayLog(stream: string, url = AMQP_URL): Promise<void> {
  const connection = await connect(url);
  try {
    const channel = await connection.createChannel();
    await channel.deleteQueue(stream);
    await channel.deleteQueue(`${stream}.epoch`);
  } finally {
    await connection.close();
  }
}

/** Host and port of the broker `AMQP_URL` names, for a `TcpGate` in front of it. */
export function brokerAddress(url = AMQP_URL): { host: string; port: number } {
  const { hostname, port, protocol } = new URL(url);
  return { host: hostname, port: Number(port || (protocol === 'amqps:' ? 5671 : 5672)) };
}

/** `AMQP_URL` with its user, password and vhost, reached through a local port (a gate). */
export function amqpUrlVia(port: number, url = AMQP_URL): string {
  const through = new URL(url);
  through.hostname = '127.0.0.1';
  through.port = String(port);
  return through.toString();
}

/** Publishes Kazoo-shaped messages the way Kazoo does: JSON bodies on its topic exchanges. */
export class KazooPublisher {
  private constructor(
    private readonly connection: ChannelModel,
    private readonly channel: Channel,
  ) {}

  static async connect(url = AMQP_URL): Promise<KazooPublisher> {
    const connection = await connect(url);
    const channel = await connection.createConfirmChannel();
    return new KazooPublisher(connection, channel);
  }

  /** Publishes and waits for the broker's confirm, so the message is routed before we go on. */
  async publish(exchange: string, routingKey: string, body: unknown): Promise<void> {
    await this.channel.assertExchange(exchange, 'topic', { durable: false, autoDelete: false });
    await this.publishRaw(exchange, routingKey, Buffer.from(JSON.stringify(body)));
  }

  async publishRaw(
    exchange: string,
    routingKey: string,
    content: Buffer,
    options: { contentEncoding?: string } = {},
  ): Promise<void> {
    const channel = this.channel as Channel & { waitForConfirms(): Promise<void> };
    channel.publish(exchange, routingKey, content, {
      contentType: 'application/json',
      ...options,
    });
    await channel.waitForConfirms();
  }

  async close(): Promise<void> {
    await this.connection.close();
  }
}

const TRACKING_QUEUE_SUFFIXES = [`.${SYSCONF_EXCHANGE}`, `.${TARGETED_EXCHANGE}`];

export interface BrokerBinding {
  readonly source: string;
  readonly queue: string;
  readonly routingKey: string;
}

/** Which broker `brokerBindings` asks: the shared one by default. */
export interface BrokerTarget {
  /** Runs rabbitmqctl against the broker (e.g. `BrokerNode.ctl`). */
  readonly ctl?: (...args: string[]) => Promise<string>;
  readonly vhost?: string;
}

/**
 * Asks RabbitMQ itself which bindings exist on queues whose name starts with `queuePrefix`: the
 * event bindings subscriptions make, not the fixed ones of the node's socket-tracking queues.
 */
export async function brokerBindings(
  queuePrefix: string,
  target: BrokerTarget = {},
): Promise<BrokerBinding[]> {
  const ctl = target.ctl ?? (async (...args: string[]) => (await run('rabbitmqctl', args)).stdout);
  const stdout = await ctl(
    'list_bindings',
    ...(target.vhost === undefined ? [] : ['-p', target.vhost]),
    '-q',
    '--formatter',
    'json',
    'source_name',
    'destination_name',
    'routing_key',
  );
  const rows = JSON.parse(stdout) as {
    source_name: string;
    destination_name: string;
    routing_key: string;
  }[];
  return rows
    .filter((row) => row.destination_name.startsWith(queuePrefix) && row.source_name !== '')
    .filter(
      (row) => !TRACKING_QUEUE_SUFFIXES.some((suffix) => row.destination_name.endsWith(suffix)),
    )
    .map((row) => ({
      source: row.source_name,
      queue: row.destination_name,
      routingKey: row.routing_key,
    }))
    .sort((a, b) => a.routingKey.localeCompare(b.routingKey));
}
