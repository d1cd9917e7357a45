import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { connect, type Channel, type ChannelModel } from 'amqplib';
import { AMQP_URL } from './amqp';

const run = promisify(execFile);

/** Where Debian's package keeps the real scripts (`/usr/sbin/*` only switch users). */
const RABBITMQ_BIN = process.env.RABBITMQ_BIN ?? '/usr/lib/rabbitmq/bin';

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/**
 * A RabbitMQ node of a test's own, for suites that delete exchanges and queues, change
 * permissions or drop connections: the broker at `AMQP_URL` is shared with other suites and
 * engineers. Its data and logs live in a temporary directory removed by `stop()`.
 *
 * It runs the local RabbitMQ installation on the host of `AMQP_URL` (the node listens on
 * that host), with the Erlang cookie of the user running the tests.
 */
export class BrokerNode {
  private constructor(
    readonly name: string,
    readonly port: number,
    private readonly host: string,
    private readonly directory: string,
  ) {}

  static async start(): Promise<BrokerNode> {
    const host = new URL(AMQP_URL).hostname || '127.0.0.1';
    const name = `bh-test-${randomBytes(4).toString('hex')}@localhost`;
    const directory = await mkdtemp(join(tmpdir(), 'bh-broker-'));
    const [port, distPort] = [await freePort(), await freePort()];
    // A config file of our own: the system one pins the shared node's listener.
    await writeFile(join(directory, 'rabbitmq.conf'), 'log.console = false\n');
    await writeFile(join(directory, 'enabled_plugins'), '[].\n');
    const node = new BrokerNode(name, port, host, directory);
    await run(join(RABBITMQ_BIN, 'rabbitmq-server'), ['-detached'], {
      env: {
        ...process.env,
        RABBITMQ_NODENAME: name,
        RABBITMQ_NODE_IP_ADDRESS: host,
        RABBITMQ_NODE_PORT: String(port),
        RABBITMQ_DIST_PORT: String(distPort),
        RABBITMQ_CONFIG_FILE: join(directory, 'rabbitmq.conf'),
        RABBITMQ_MNESIA_BASE: join(directory, 'mnesia'),
        RABBITMQ_LOG_BASE: join(directory, 'log'),
        RABBITMQ_ENABLED_PLUGINS_FILE: join(directory, 'enabled_plugins'),
        RABBITMQ_PID_FILE: join(directory, 'pid'),
      },
    });
    await node.ctl('wait', join(directory, 'pid'), '--timeout', '60');
    return node;
  }

  /** `amqp://guest:guest@host:port/<vhost>` (guest may connect from the local host only). */
  url(vhost = '/', user = 'guest', password = 'guest'): string {
    return `amqp://${user}:${password}@${this.host}:${this.port}/${encodeURIComponent(vhost)}`;
  }

  /** Runs `rabbitmqctl` against this node. */
  async ctl(...args: string[]): Promise<string> {
    const { stdout } = await run(join(RABBITMQ_BIN, 'rabbitmqctl'), ['-n', this.name, ...args]);
    return stdout;
  }

  /** A fresh vhost on which guest may do everything; one per scenario keeps them apart. */
  async addVhost(prefix: string): Promise<string> {
    const vhost = `${prefix}-${randomBytes(3).toString('hex')}`;
    await this.ctl('add_vhost', vhost);
    await this.ctl('set_permissions', '-p', vhost, 'guest', '.*', '.*', '.*');
    return vhost;
  }

  /** An administrative connection to `vhost`, for deleting and declaring behind the gateway's back. */
  async admin(vhost: string): Promise<{ channel(): Promise<Channel>; close(): Promise<void> }> {
    const connection: ChannelModel = await connect(this.url(vhost));
    return {
      channel: async () => {
        const channel = await connection.createChannel();
        channel.on('error', () => undefined);
        return channel;
      },
      close: () => connection.close(),
    };
  }

  async stop(): Promise<void> {
    try {
      await this.ctl('stop', join(this.directory, 'pid'));
    } finally {
      await rm(this.directory, { recursive: true, force: true });
    }
  }
}
