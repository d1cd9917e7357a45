import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { Logger } from '@nestjs/common';
import { connect, type ChannelModel, type ConsumeMessage } from 'amqplib';
import { EventSimulator } from '../../src/demo/event-simulator';
import { AMQP_URL, amqpUrlVia, brokerAddress, deleteReplayLog } from '../support/amqp';
import { EventClient } from '../support/clients';
import { newAccountId } from '../support/fake-crossbar';
import { TcpGate } from '../support/tcp-gate';
import { waitUntil } from '../support/wait';

/** The demo's replay log: a durable stream of this run only, deleted afterwards. */
const DEMO_STREAM = `blackhole.replay.demo-${process.pid}`;

// `npm run demo` builds the project (nest build) before it starts.
jest.setTimeout(90_000);

const ROOT = join(__dirname, '..', '..');
const CALL_EVENT_NAMES = new Set(['CHANNEL_CREATE', 'CHANNEL_ANSWER', 'CHANNEL_DESTROY']);
/** What the simulator's other scenarios would show up as, had they leaked into `call.*.*`. */
const OTHER_FAMILY_EVENTS = new Set([
  'participants_event',
  'fax.status',
  'doc_created_user',
  'doc_created_device',
  'doc_created_callflow',
  'doc_created_fax',
  'doc_edited_user',
  'doc_deleted_user',
  'dialog_update',
  'update',
  'mwi_update',
]);

interface DemoBanner {
  readonly consoleUrl: URL;
  readonly accountId: string;
  readonly token: string;
  readonly otherAccountId: string;
}

/** What the demo printed, line by line, and a way to wait for the lines we need. */
class DemoOutput {
  private text = '';
  private readonly listeners = new Set<() => void>();
  /** Resolves once npm has exited and every process holding its output (node) has too. */
  readonly closed: Promise<void>;

  constructor(readonly child: ChildProcess) {
    const append = (chunk: Buffer): void => {
      this.text += chunk.toString('utf8');
      this.listeners.forEach((listener) => listener());
    };
    child.stdout?.on('data', append);
    child.stderr?.on('data', append);
    child.on('exit', () => this.listeners.forEach((listener) => listener()));
    this.closed = new Promise((resolve) => child.once('close', () => resolve()));
  }

  /** Resolves with the banner once every line of it has been printed. */
  banner(timeoutMs: number): Promise<DemoBanner> {
    return new Promise((resolve, reject) => {
      const check = (): void => {
        const banner = parseBanner(this.text);
        if (banner !== undefined) {
          done();
          resolve(banner);
        } else if (this.child.exitCode !== null || this.child.signalCode !== null) {
          done();
          reject(new Error(`the demo exited before printing its banner:\n${this.tail()}`));
        }
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`no demo banner within ${timeoutMs} ms:\n${this.tail()}`));
      }, timeoutMs);
      const done = (): void => {
        clearTimeout(timer);
        this.listeners.delete(check);
      };
      this.listeners.add(check);
      check();
    });
  }

  tail(): string {
    return this.text.split('\n').slice(-30).join('\n');
  }
}

function parseBanner(text: string): DemoBanner | undefined {
  const consoleUrl = /^\s*console:\s+(http:\/\/localhost:\d+\/\S*)\s*$/m.exec(text)?.[1];
  const accountId = /^\s*account:\s+([0-9a-f]{32})\b/m.exec(text)?.[1];
  const token = /^\s*token:\s+(\S+)\s*$/m.exec(text)?.[1];
  const otherAccountId = /^\s*other account[^:]*:\s+([0-9a-f]{32})\b/m.exec(text)?.[1];
  if (!consoleUrl || !accountId || !token || !otherAccountId) return undefined;
  return { consoleUrl: new URL(consoleUrl), accountId, token, otherAccountId };
}

function accountOf(payload: unknown): unknown {
  const vars = (payload as { 'Custom-Channel-Vars'?: { 'Account-ID'?: unknown } })[
    'Custom-Channel-Vars'
  ];
  return vars?.['Account-ID'];
}

describe('npm run demo', () => {
  let child: ChildProcess;
  let output: DemoOutput;
  let banner: DemoBanner;
  let client: EventClient | undefined;
  let broker: ChannelModel | undefined;

  beforeAll(async () => {
    child = spawn('npm', ['run', 'demo'], {
      cwd: ROOT,
      // Own process group, so afterAll can stop npm, the shell and node together.
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: {
        ...process.env,
        PORT: '0',
        HOST: '127.0.0.1',
        AMQP_URL,
        // The demo runs as shipped, replay log on, on a stream of its own removed afterwards.
        REPLAY_STREAM: DEMO_STREAM,
        LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'warn',
      },
    });
    output = new DemoOutput(child);
    banner = await output.banner(75_000);
  });

  afterAll(async () => {
    client?.close();
    await broker?.close().catch(() => undefined);
    const pid = child.pid;
    if (pid === undefined) return;
    killGroup(pid, 'SIGTERM');
    const timer = setTimeout(() => killGroup(pid, 'SIGKILL'), 10_000);
    await output.closed;
    clearTimeout(timer);
    await deleteReplayLog(DEMO_STREAM);
  });

  it('prints the console URL on the actual port, the demo account, its token and the other account', async () => {
    expect(banner.consoleUrl.searchParams.get('account_id')).toBe(banner.accountId);
    expect(banner.consoleUrl.searchParams.get('auth_token')).toBe(banner.token);
    expect(banner.otherAccountId).not.toBe(banner.accountId);
    const page = await fetch(`http://127.0.0.1:${banner.consoleUrl.port}/`);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toMatch(/text\/html/);
  });

  it("streams the demo account's calls and never the other account's", async () => {
    // The other account's calls do flow through RabbitMQ, on the keys the gateway binds for
    // everyone (`call.<EVENT>.*`), so their absence below is the gateway's doing.
    broker = await connect(AMQP_URL);
    const channel = await broker.createChannel();
    await channel.assertExchange('callevt', 'topic', { durable: false, autoDelete: false });
    const { queue } = await channel.assertQueue('', { exclusive: true, autoDelete: true });
    await channel.bindQueue(queue, 'callevt', 'call.*.*');
    let otherAccountSeen = false;
    await channel.consume(
      queue,
      (message: ConsumeMessage | null) => {
        if (
          message &&
          accountOf(JSON.parse(message.content.toString())) === banner.otherAccountId
        ) {
          otherAccountSeen = true;
        }
      },
      { noAck: true },
    );

    client = await EventClient.connect('v4', `http://127.0.0.1:${banner.consoleUrl.port}`);
    const refused = await client.subscribe(banner.token, banner.otherAccountId, 'call.*.*');
    expect(refused).toMatchObject({ status: 'error', data: { code: 'account_forbidden' } });
    const ack = await client.subscribe(banner.token, banner.accountId, 'call.*.*');
    expect(ack).toEqual({ status: 'success', data: { subscribed: ['call.*.*'] } });

    await client.waitFor(
      'CHANNEL_CREATE',
      (payload) => accountOf(payload) === banner.accountId,
      30_000,
    );
    const sessionClient = client;
    await waitUntil(
      'five call events',
      () => {
        const calls = sessionClient.events.filter((e) => CALL_EVENT_NAMES.has(e.name));
        return calls.length >= 5 ? calls : undefined;
      },
      45_000,
    );
    await waitUntil('a call of the other account on RabbitMQ', () => otherAccountSeen || undefined);
    // The client's own next call event, taken after the other account's went by, proves the
    // gateway had dispatched that one too.
    const seenSoFar = client.events.length;
    await waitUntil(
      'another call event of the demo account',
      () => (sessionClient.events.length > seenSoFar ? true : undefined),
      45_000,
    );

    const received = client.events.filter((e) => CALL_EVENT_NAMES.has(e.name));
    for (const event of received) {
      expect(accountOf(event.payload)).toBe(banner.accountId);
      expect(accountOf(event.payload)).not.toBe(banner.otherAccountId);
    }
    // Only what was subscribed arrives: no conference, fax, document or presence events.
    expect(client.events.filter((e) => OTHER_FAMILY_EVENTS.has(e.name))).toEqual([]);
  });

  it('stops on SIGTERM', async () => {
    killGroup(child.pid ?? 0, 'SIGTERM');
    let timer: NodeJS.Timeout | undefined;
    const outcome = await Promise.race([
      output.closed.then(() => 'exited'),
      new Promise<string>(
        (resolve) => (timer = setTimeout(() => resolve('still running'), 15_000)),
      ),
    ]);
    clearTimeout(timer);
    expect(outcome).toBe('exited');
  });
});

describe("the demo's event simulator", () => {
  let gate: TcpGate;
  let broker: ChannelModel;
  let simulator: EventSimulator | undefined;
  const accountId = newAccountId();
  const seen: string[] = [];

  beforeAll(async () => {
    gate = await TcpGate.start(brokerAddress());
    // Watches the real broker for this account's calls, whatever the gate does.
    broker = await connect(AMQP_URL);
    const channel = await broker.createChannel();
    await channel.assertExchange('callevt', 'topic', { durable: false, autoDelete: false });
    const { queue } = await channel.assertQueue('', { exclusive: true, autoDelete: true });
    await channel.bindQueue(queue, 'callevt', 'call.*.*');
    await channel.consume(
      queue,
      (message: ConsumeMessage | null) => {
        if (message === null) return;
        if (accountOf(JSON.parse(message.content.toString())) === accountId) {
          seen.push(message.fields.routingKey);
        }
      },
      { noAck: true },
    );
  });

  afterAll(async () => {
    jest.restoreAllMocks();
    await simulator?.stop();
    await gate.stop();
    await broker.close();
  });

  it('survives RabbitMQ being down: retries with a backoff, logs once per outage, resumes', async () => {
    const warn = jest.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
    const debug = jest.spyOn(Logger.prototype, 'debug').mockImplementation(() => undefined);
    jest.spyOn(Logger.prototype, 'log').mockImplementation(() => undefined);
    const failedAttempts = (): number =>
      debug.mock.calls.filter(([message]) => String(message).startsWith('cannot reach')).length;

    simulator = new EventSimulator({
      amqpUrl: amqpUrlVia(gate.port),
      accounts: [{ id: accountId, name: 'Gated Account', realm: 'gated.sip.example.com' }],
      intervalMs: { min: 5, max: 20 },
      reconnectMs: { min: 20, max: 80 },
    });
    simulator.start();

    // Down from the start: several attempts, one warning, nothing published.
    await waitUntil('three failed attempts', () => (failedAttempts() >= 3 ? true : undefined));
    expect(warn).toHaveBeenCalledTimes(1);
    expect(simulator.published).toBe(0);

    gate.openGate();
    await waitUntil('calls on the broker', () => (seen.length >= 3 ? true : undefined), 15_000);
    const beforeOutage = simulator.published;
    expect(beforeOutage).toBeGreaterThan(0);

    // Lost while publishing: one more warning, however many attempts fail.
    gate.closeGate();
    const attemptsBefore = failedAttempts();
    await waitUntil('three more failed attempts', () =>
      failedAttempts() >= attemptsBefore + 3 ? true : undefined,
    );
    expect(warn).toHaveBeenCalledTimes(2);

    gate.openGate();
    const seenBefore = seen.length;
    await waitUntil('calls after the outage', () => (seen.length > seenBefore ? true : undefined));
    expect(simulator.published).toBeGreaterThan(beforeOutage);
    expect(warn).toHaveBeenCalledTimes(2);

    await simulator.stop();
    simulator = undefined;
  });
});

function killGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    // Already gone.
  }
}
