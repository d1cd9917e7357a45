'use strict';
/**
 * `npm run bench`: Blackhole's throughput, reported as ratios against raw RabbitMQ and raw
 * socket.io measured in the same run on the same machine (never as absolute thresholds).
 *
 * Runs against the BUILT app (`npm run build` first): the gateway is `node dist/main.js` in a
 * child process of its own (process group), authenticating against the Crossbar stand-in from
 * `dist/demo/`, which runs in this process. Kazoo-shaped CHANNEL_CREATE events are published on
 * the `callevt` topic exchange of the local RabbitMQ.
 *
 * Scenarios (each repeated BENCH_REPS times after a small warm-up; the median is reported):
 *   raw-amqp            amqplib consumer, noAck, exclusive queue on call.CHANNEL_CREATE.*
 *   raw-amqp-ack        the same with manual acks and prefetch 200, as the gateway consumes
 *   bh-sio-1            Blackhole, 1 socket.io v4 client
 *   bh-ws-1             Blackhole, 1 Kazoo 4.x plain-WebSocket client
 *   bh-sio-k-clean      Blackhole, K socket.io v4 clients on one account
 *   bh-sio-k            the same with as many events of another account interleaved (isolation
 *                       check: none may reach the clients; prints PASS/FAIL)
 *   raw-sio-k           plain socket.io server, io.emit to K clients (encoded once)
 *   raw-sio-k-each      plain socket.io server, socket.emit per client (encoded per socket,
 *                       the way Blackhole's sessions emit)
 *
 * Environment: AMQP_URL, BENCH_N (messages per run, 20000), BENCH_K (clients, 20), BENCH_N_K
 * (messages per run of the K-client scenarios, BENCH_N / 4), BENCH_REPS (3),
 * BENCH_WARMUP (messages, 2000), BENCH_RUN_TIMEOUT_S (60), BENCH_TIMEOUT_S (whole run, 300),
 * BENCH_GATEWAY_NODE_ARGS (extra node flags for the gateway child, e.g. "--prof" to profile it),
 * BENCH_ONLY (comma-separated scenario ids, to profile or iterate on one of them).
 * Output: a table on stdout and the same as JSON in test-output/bench.json. Exit code 1 when a
 * run fails or the isolation check does not pass.
 */
const { spawn, fork } = require('node:child_process');
const { randomBytes } = require('node:crypto');
const { once } = require('node:events');
const fs = require('node:fs');
const http = require('node:http');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');
const { performance } = require('node:perf_hooks');

const ROOT = path.resolve(__dirname, '..');
const amqp = require('amqplib');
const { io: ioClient } = require('socket.io-client');
const { WebSocket } = require('ws');

function intEnv(name, fallback) {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value <= 0) {
    throw new Error(`${name} must be a positive integer, got "${raw}"`);
  }
  return value;
}

const CONFIG = {
  amqpUrl: process.env.AMQP_URL || 'amqp://guest:guest@127.0.0.1:5672',
  n: intEnv('BENCH_N', 20000),
  k: intEnv('BENCH_K', 20),
  // K-client runs move K times as many events: fewer messages keep them to a few seconds.
  nK: intEnv('BENCH_N_K', Math.max(1, Math.round(intEnv('BENCH_N', 20000) / 4))),
  reps: intEnv('BENCH_REPS', 3),
  warmup: intEnv('BENCH_WARMUP', 2000),
  runTimeoutMs: intEnv('BENCH_RUN_TIMEOUT_S', 60) * 1000,
  totalTimeoutMs: intEnv('BENCH_TIMEOUT_S', 300) * 1000,
  only: (process.env.BENCH_ONLY || '')
    .split(',')
    .map((id) => id.trim())
    .filter(Boolean),
};
const wanted = (...ids) => CONFIG.only.length === 0 || ids.some((id) => CONFIG.only.includes(id));
const EXCHANGE = 'callevt';
const BINDING = 'call.CHANNEL_CREATE.*';
const STEP_TIMEOUT_MS = 15000;
const OUTPUT = path.join(ROOT, 'test-output', 'bench.json');
const CLK_TCK = 100; // Linux USER_HZ; /proc/<pid>/stat counts CPU time in these ticks
const RUN_ID = randomBytes(3).toString('hex');

// ---------------------------------------------------------------------------------------------
// Child processes: each in its own process group, killed (group-wide) on every way out.

const children = new Map(); // pid → { name, child, exited, output }

/**
 * Rejects as soon as something the measurements depend on breaks (a child process dies, a client
 * is disconnected): every wait for receipts races with it, so a failure surfaces at once
 * instead of at the run's timeout.
 */
let abortRun;
const aborted = new Promise((_, reject) => (abortRun = reject));
aborted.catch(() => {}); // observed through the races below

function track(name, child) {
  const entry = { name, child, output: '', exited: undefined, stopping: false };
  entry.exited = new Promise((resolve) =>
    child.once('exit', (code, signal) => {
      children.delete(child.pid);
      if (!entry.stopping) {
        abortRun(
          new Error(
            `${name} exited unexpectedly (code ${code}, signal ${signal})` +
              (entry.output ? `; its last output:\n${entry.output.trimEnd()}` : ''),
          ),
        );
      }
      resolve({ code, signal });
    }),
  );
  const keep = (chunk) => {
    entry.output = (entry.output + chunk.toString('utf8')).slice(-4000);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  children.set(child.pid, entry);
  return entry;
}

function killGroup(pid, signal) {
  try {
    process.kill(-pid, signal);
  } catch {
    // already gone
  }
}

async function stopChild(entry) {
  entry.stopping = true;
  if (!children.has(entry.child.pid)) return;
  killGroup(entry.child.pid, 'SIGTERM');
  try {
    await deadline(entry.exited, 5000, `${entry.name} to exit after SIGTERM`);
  } catch {
    killGroup(entry.child.pid, 'SIGKILL');
    await deadline(entry.exited, 5000, `${entry.name} to exit after SIGKILL`).catch(() => {});
  }
}

process.on('exit', () => {
  for (const pid of children.keys()) killGroup(pid, 'SIGKILL');
});
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(signal, () => {
    process.stderr.write(`\nbench: ${signal} received, stopping child processes\n`);
    process.exit(130);
  });
}

// ---------------------------------------------------------------------------------------------
// Waiting: every wait has a deadline and says what it was waiting for.

function deadline(promise, ms, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** Polls `probe` every `intervalMs` until it returns a truthy value; only for external state. */
async function pollUntil(probe, { timeoutMs, intervalMs, what }) {
  const end = Date.now() + timeoutMs;
  let last;
  for (;;) {
    try {
      const value = await probe();
      if (value) return value;
    } catch (error) {
      last = error;
    }
    if (Date.now() > end) {
      throw new Error(
        `timed out after ${timeoutMs} ms waiting for ${what}${last ? ` (last error: ${last.message})` : ''}`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}

/** Counts receipts of one run; resolves when every receiver has `perReceiver` of them. */
class Completion {
  constructor(receivers, perReceiver, prefix, what) {
    this.perReceiver = perReceiver;
    this.prefix = prefix;
    this.what = what;
    this.counts = new Array(receivers).fill(0);
    this.total = 0;
    this.target = receivers * perReceiver;
    this.lastAt = 0;
    this.promise = new Promise((resolve) => (this.resolve = resolve));
  }

  hit(receiver) {
    this.counts[receiver]++;
    if (++this.total === this.target) {
      this.lastAt = performance.now();
      this.resolve();
    }
  }

  async wait(ms) {
    try {
      await deadline(Promise.race([this.promise, aborted]), ms, this.what);
    } catch (error) {
      error.message += ` (received ${this.total} of ${this.target})`;
      throw error;
    }
    const uneven = this.counts.findIndex((count) => count !== this.perReceiver);
    if (uneven !== -1) {
      throw new Error(
        `${this.what}: receiver ${uneven} got ${this.counts[uneven]} events, expected ${this.perReceiver}`,
      );
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Processes, ports, HTTP, /proc.

function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

function getJson(url, timeoutMs = 2000) {
  return new Promise((resolve, reject) => {
    const request = http.get(url, { timeout: timeoutMs }, (response) => {
      let body = '';
      response.setEncoding('utf8');
      response.on('data', (chunk) => (body += chunk));
      response.on('end', () => {
        let json;
        try {
          json = JSON.parse(body);
        } catch {
          json = undefined;
        }
        resolve({ status: response.statusCode, body: json });
      });
    });
    request.on('timeout', () => request.destroy(new Error(`GET ${url} timed out`)));
    request.on('error', reject);
  });
}

/** utime + stime of a process, in seconds. */
function cpuSeconds(pid) {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / CLK_TCK; // fields 14 and 15 of stat(5)
}

/** A `Vm*` line of /proc/<pid>/status, in KiB. */
function vmKiB(pid, field) {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const match = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status);
  return match ? Number(match[1]) : undefined;
}

async function startGateway(crossbarUrl) {
  const port = await freePort();
  const extraArgs = (process.env.BENCH_GATEWAY_NODE_ARGS || '').split(/\s+/).filter(Boolean);
  const child = spawn(process.execPath, [...extraArgs, path.join(ROOT, 'dist', 'main.js')], {
    cwd: ROOT,
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: {
      ...process.env,
      PORT: String(port),
      HOST: '127.0.0.1',
      CROSSBAR_URL: crossbarUrl,
      AMQP_URL: CONFIG.amqpUrl,
      LOG_LEVEL: 'warn',
    },
  });
  const entry = track('gateway (node dist/main.js)', child);
  const url = `http://127.0.0.1:${port}`;
  let exited;
  entry.exited.then((status) => (exited = status));
  await pollUntil(
    async () => {
      if (exited) {
        throw new Error(
          `the gateway exited during boot (${JSON.stringify(exited)}):\n${entry.output}`,
        );
      }
      return (await getJson(`${url}/health`, 1000)).status === 200;
    },
    { timeoutMs: 30000, intervalMs: 100, what: `GET ${url}/health to answer 200` },
  ).catch((error) => {
    if (exited)
      throw new Error(
        `the gateway exited during boot (${JSON.stringify(exited)}):\n${entry.output}`,
      );
    throw error;
  });
  return { entry, pid: child.pid, port, url };
}

/** The gateway's event counters from GET /health. */
async function healthEvents(gateway) {
  const { status, body } = await deadline(
    getJson(`${gateway.url}/health`),
    STEP_TIMEOUT_MS,
    'GET /health',
  );
  if (!body || typeof body.events !== 'object') {
    throw new Error(`GET /health answered ${status} without event counters`);
  }
  return body.events;
}

/** Runs `body`, then stops the child; on failure, shows the child's last output first. */
async function withChild(entry, body) {
  try {
    await body();
  } catch (error) {
    if (entry.output) log(`--- last output of ${entry.name} ---\n${entry.output.trimEnd()}\n---`);
    throw error;
  } finally {
    await stopChild(entry);
  }
}

async function startRawSocketIo() {
  const child = fork(path.join(__dirname, 'raw-socketio-server.js'), [], {
    cwd: ROOT,
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
  });
  const entry = track('raw socket.io server', child);
  const [message] = await deadline(
    once(child, 'message'),
    STEP_TIMEOUT_MS,
    'the raw socket.io server to listen',
  );
  if (message.type !== 'listening')
    throw new Error(`raw socket.io server said ${JSON.stringify(message)}`);
  return { entry, child, pid: child.pid, url: `http://127.0.0.1:${message.port}` };
}

// ---------------------------------------------------------------------------------------------
// Messages.

const FIXTURE = JSON.parse(
  fs.readFileSync(
    path.join(ROOT, 'test', 'fixtures', 'call', '01-socketio-3.22-CHANNEL_CREATE.json'),
    'utf8',
  ),
).args;

function callEvent(accountId, id) {
  return {
    ...FIXTURE,
    'Call-ID': id,
    'Msg-ID': id,
    'Custom-Channel-Vars': { ...FIXTURE['Custom-Channel-Vars'], 'Account-ID': accountId },
  };
}

let runCounter = 0;
/** A prefix unique to one run: ids (Call-ID = Msg-ID) are `<prefix><i>`, routing-key safe. */
function newPrefix(tag) {
  return `bench${RUN_ID}${tag}${++runCounter}n`;
}

/** Pre-serialized messages (built before the clock starts). */
function buildMessages(accountId, prefix, count) {
  const messages = new Array(count);
  for (let i = 0; i < count; i++) {
    const id = `${prefix}${i}`;
    messages[i] = {
      routingKey: `call.CHANNEL_CREATE.${id}`,
      content: Buffer.from(JSON.stringify(callEvent(accountId, id))),
    };
  }
  return messages;
}

/** Publishes in order, honouring the channel's back-pressure, then waits for every confirm. */
async function publishAll(channel, messages) {
  for (let i = 0; i < messages.length; i++) {
    const { routingKey, content } = messages[i];
    const ok = channel.publish(EXCHANGE, routingKey, content, { contentType: 'application/json' });
    if (!ok) await deadline(once(channel, 'drain'), STEP_TIMEOUT_MS, 'the AMQP channel to drain');
    // Let receivers in this process run now and then.
    else if ((i & 255) === 255) await new Promise(setImmediate);
  }
  await deadline(channel.waitForConfirms(), CONFIG.runTimeoutMs, 'publisher confirms');
}

// ---------------------------------------------------------------------------------------------
// Clients.

async function connectSocketIo(url, count) {
  return deadline(
    Promise.all(
      Array.from(
        { length: count },
        () =>
          new Promise((resolve, reject) => {
            const socket = ioClient(url, {
              transports: ['websocket'],
              forceNew: true,
              reconnection: false,
              timeout: STEP_TIMEOUT_MS,
            });
            socket.once('connect', () => resolve(socket));
            socket.once('connect_error', (error) =>
              reject(new Error(`socket.io connect to ${url} failed: ${error.message}`)),
            );
          }),
      ),
    ),
    STEP_TIMEOUT_MS,
    `${count} socket.io client(s) to connect to ${url}`,
  );
}

async function subscribeSocketIo(socket, token, accountId) {
  const ack = await deadline(
    socket.timeout(STEP_TIMEOUT_MS).emitWithAck('subscribe', {
      auth_token: token,
      account_id: accountId,
      binding: BINDING,
    }),
    STEP_TIMEOUT_MS + 1000,
    'the socket.io subscribe ack',
  );
  if (!ack || ack.status !== 'success') throw new Error(`subscribe failed: ${JSON.stringify(ack)}`);
}

async function connectKazooWs(port, token, accountId) {
  const ws = new WebSocket(`ws://127.0.0.1:${port}/`);
  await deadline(once(ws, 'open'), STEP_TIMEOUT_MS, 'the Kazoo 4.x WebSocket to open');
  const reply = new Promise((resolve) => {
    const onMessage = (data) => {
      const frame = JSON.parse(data.toString('utf8'));
      if (frame.action === 'reply' && frame.request_id === 'bench-subscribe') {
        ws.off('message', onMessage);
        resolve(frame);
      }
    };
    ws.on('message', onMessage);
  });
  ws.send(
    JSON.stringify({
      action: 'subscribe',
      auth_token: token,
      request_id: 'bench-subscribe',
      data: { account_id: accountId, binding: BINDING },
    }),
  );
  const frame = await deadline(reply, STEP_TIMEOUT_MS, 'the Kazoo 4.x subscribe reply');
  if (frame.status !== 'success') throw new Error(`ws subscribe failed: ${JSON.stringify(frame)}`);
  return ws;
}

async function closeSocketIo(sockets) {
  await deadline(
    Promise.all(
      sockets.map((socket) => {
        if (!socket.connected) return undefined;
        const closed = once(socket, 'disconnect');
        socket.disconnect();
        return closed;
      }),
    ),
    STEP_TIMEOUT_MS,
    'socket.io clients to disconnect',
  );
}

async function closeWs(ws) {
  if (ws.readyState === WebSocket.CLOSED) return;
  const closed = once(ws, 'close');
  ws.close();
  await deadline(closed, STEP_TIMEOUT_MS, 'the WebSocket to close');
}

// ---------------------------------------------------------------------------------------------
// Scenario runner.

const median = (values) => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
};

const results = {};
const log = (line) => process.stderr.write(`${line}\n`);

/** The RabbitMQ node's OS process when the broker is local (for its CPU time), else undefined. */
function findBrokerPid() {
  if (!/@(127\.0\.0\.1|localhost)(:|\/|$)/.test(CONFIG.amqpUrl)) return undefined;
  const pids = [];
  for (const name of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      if (fs.readFileSync(`/proc/${name}/comm`, 'utf8').trim() !== 'beam.smp') continue;
      if (fs.readFileSync(`/proc/${name}/cmdline`, 'utf8').includes('rabbit'))
        pids.push(Number(name));
    } catch {
      // gone, or not ours to read
    }
  }
  return pids.length === 1 ? pids[0] : undefined;
}
const BROKER_PID = findBrokerPid();

/** CPU seconds so far of the server under test, this process (publisher + clients), the broker. */
function cpuSnapshot(serverPid) {
  const own = process.cpuUsage();
  const safe = (pid) => {
    try {
      return pid === undefined ? undefined : cpuSeconds(pid);
    } catch {
      return undefined;
    }
  };
  return {
    server: safe(serverPid),
    bench: (own.user + own.system) / 1e6,
    broker: safe(BROKER_PID),
  };
}

/**
 * Runs `runOnce(count, measured)` after a warm-up of BENCH_WARMUP messages, then BENCH_REPS
 * times with `messages` messages; each call returns {ms, items}. Records the CPU time spent over the measured runs by the
 * server under test (`serverPid`), by this process and by the broker, per delivery.
 */
async function scenario(id, label, unit, { messages, deliveriesPerMessage, serverPid }, runOnce) {
  log(`- ${label}: warm-up`);
  await runOnce(Math.min(CONFIG.warmup, messages), false);
  const before = cpuSnapshot(serverPid);
  const runs = [];
  for (let rep = 0; rep < CONFIG.reps; rep++) {
    const { ms, items } = await runOnce(messages, true);
    runs.push({ ms: Math.round(ms), rate: Math.round((items * 1000) / ms) });
    log(
      `  run ${rep + 1}/${CONFIG.reps}: ${fmt(runs[rep].rate)} ${unit} (${(ms / 1000).toFixed(2)} s)`,
    );
  }
  const after = cpuSnapshot(serverPid);
  let serverPeakRssKiB;
  try {
    serverPeakRssKiB = serverPid === undefined ? undefined : vmKiB(serverPid, 'VmHWM');
  } catch {
    serverPeakRssKiB = undefined;
  }
  const deliveries = messages * deliveriesPerMessage * CONFIG.reps;
  const wallSeconds = runs.reduce((sum, r) => sum + r.ms, 0) / 1000;
  const cpu = {};
  const perDelivery = {};
  const coresBusy = {};
  for (const key of Object.keys(before)) {
    if (before[key] === undefined || after[key] === undefined) continue;
    const seconds = after[key] - before[key];
    cpu[key] = round(seconds, 2);
    perDelivery[key] = round((seconds * 1e6) / deliveries, 1);
    coresBusy[key] = round(seconds / wallSeconds, 2);
  }
  results[id] = {
    label,
    unit,
    messagesPerRun: messages,
    deliveriesPerRun: messages * deliveriesPerMessage,
    median: median(runs.map((r) => r.rate)),
    runs,
    cpuSeconds: cpu,
    cpuMicrosPerDelivery: perDelivery,
    coresBusy,
    serverPeakRssKiB,
  };
  return results[id];
}

const round = (value, digits) => Number(value.toFixed(digits));
const fmt = (value) => Math.round(value).toLocaleString('en-US');

// ---------------------------------------------------------------------------------------------
// Measurements.

async function measureRawAmqp(publisher, { ack }) {
  const connection = await deadline(
    amqp.connect(CONFIG.amqpUrl),
    STEP_TIMEOUT_MS,
    'RabbitMQ (consumer connection)',
  );
  try {
    const channel = await connection.createChannel();
    if (ack) await channel.prefetch(200);
    const { queue } = await channel.assertQueue('', {
      exclusive: true,
      autoDelete: true,
      durable: false,
    });
    await channel.bindQueue(queue, EXCHANGE, BINDING);
    let current;
    await channel.consume(
      queue,
      (message) => {
        if (!message) return;
        if (ack) channel.ack(message);
        // Other users of the broker may publish call.CHANNEL_CREATE too: count only ours.
        if (current && message.fields.routingKey.startsWith(current.prefix)) current.hit(0);
      },
      { noAck: !ack },
    );
    const id = ack ? 'raw-amqp-ack' : 'raw-amqp';
    const label = ack
      ? 'raw RabbitMQ, 1 consumer, ack + prefetch 200'
      : 'raw RabbitMQ, 1 consumer, noAck';
    const options = { messages: CONFIG.n, deliveriesPerMessage: 1, serverPid: undefined };
    return await scenario(id, label, 'msg/s', options, async (count) => {
      const prefix = newPrefix('q');
      const messages = buildMessages(BENCH_ACCOUNT, prefix, count);
      current = new Completion(
        1,
        count,
        `call.CHANNEL_CREATE.${prefix}`,
        `${count} raw AMQP deliveries`,
      );
      const t0 = performance.now();
      await publishAll(publisher, messages);
      await current.wait(CONFIG.runTimeoutMs);
      return { ms: current.lastAt - t0, items: count };
    });
  } finally {
    await connection.close().catch(() => {});
  }
}

let BENCH_ACCOUNT;
let OTHER_ACCOUNT;

/** Wires Blackhole socket.io clients to `state.current` and the isolation counters. */
function listenSocketIo(sockets, state) {
  sockets.forEach((socket, index) => {
    socket.on('CHANNEL_CREATE', (event) => {
      const account =
        event && event['Custom-Channel-Vars'] && event['Custom-Channel-Vars']['Account-ID'];
      if (account !== BENCH_ACCOUNT) {
        state.foreign++;
        return;
      }
      const current = state.current;
      if (current && event['Call-ID'].startsWith(current.prefix)) current.hit(index);
      else state.stray++;
    });
    socket.on('auth_failure', (e) => state.errors.push(`auth_failure: ${JSON.stringify(e)}`));
    socket.on('error', (e) => state.errors.push(`error: ${JSON.stringify(e)}`));
    socket.on('disconnect', (reason) => {
      if (!state.closing)
        abortRun(new Error(`socket.io client ${index} was disconnected: ${reason}`));
    });
  });
}

/** `id`: bh-sio-1, bh-sio-k-clean or bh-sio-k (the latter interleaves the other account). */
async function measureGatewaySocketIo(gateway, publisher, token, id) {
  const clients = id === 'bh-sio-1' ? 1 : CONFIG.k;
  const withIsolation = id === 'bh-sio-k';
  const sockets = await connectSocketIo(gateway.url, clients);
  const state = { current: undefined, foreign: 0, stray: 0, errors: [], closing: false };
  const isolation = { runs: 0, otherPublished: 0, foreignReceived: 0, healthChecks: [] };
  try {
    await deadline(
      Promise.all(sockets.map((socket) => subscribeSocketIo(socket, token, BENCH_ACCOUNT))),
      STEP_TIMEOUT_MS * 2,
      'socket.io subscriptions',
    );
    listenSocketIo(sockets, state);
    const label =
      id === 'bh-sio-1'
        ? 'Blackhole, 1 socket.io client'
        : `Blackhole, ${clients} socket.io clients${withIsolation ? ', other account interleaved' : ', bench account only'}`;
    const unit = id === 'bh-sio-1' ? 'events/s' : 'deliveries/s';
    const options = {
      messages: id === 'bh-sio-1' ? CONFIG.n : CONFIG.nK,
      deliveriesPerMessage: clients,
      serverPid: gateway.pid,
    };
    const result = await scenario(id, label, unit, options, async (count, measured) => {
      const prefix = newPrefix('s');
      let messages = buildMessages(BENCH_ACCOUNT, prefix, count);
      if (withIsolation) {
        // other₀, bench₀, other₁, bench₁, …: the last message is the bench account's, so once
        // every client has it the gateway has handled (and would have sent) all of the others.
        const others = buildMessages(OTHER_ACCOUNT, newPrefix('o'), count);
        messages = messages.flatMap((message, i) => [others[i], message]);
      }
      const before = withIsolation ? await healthEvents(gateway) : undefined;
      state.current = new Completion(
        clients,
        count,
        prefix,
        `${clients}×${count} Blackhole socket.io events`,
      );
      const t0 = performance.now();
      await publishAll(publisher, messages);
      await state.current.wait(CONFIG.runTimeoutMs);
      const ms = state.current.lastAt - t0;
      if (state.errors.length) throw new Error(`client errors: ${state.errors.join('; ')}`);
      if (withIsolation) {
        const after = await healthEvents(gateway);
        const check = {
          received: after.received - before.received,
          delivered: after.delivered - before.delivered,
          expectedReceivedAtLeast: 2 * count,
          expectedDelivered: clients * count,
        };
        isolation.healthChecks.push(check);
        if (measured) isolation.runs++;
        isolation.otherPublished += count;
      }
      return { ms, items: clients * count };
    });
    if (withIsolation) {
      isolation.foreignReceived = state.foreign;
      const healthOk = isolation.healthChecks.every(
        (c) => c.received >= c.expectedReceivedAtLeast && c.delivered === c.expectedDelivered,
      );
      isolation.pass = state.foreign === 0 && state.stray === 0 && healthOk;
      result.isolation = isolation;
    }
    if (state.foreign || state.stray) {
      result.unexpected = { foreign: state.foreign, stray: state.stray };
    }
    return result;
  } finally {
    state.closing = true;
    await closeSocketIo(sockets).catch(() => sockets.forEach((s) => s.close()));
  }
}

async function measureGatewayWs(gateway, publisher, token) {
  const ws = await connectKazooWs(gateway.port, token, BENCH_ACCOUNT);
  const state = { current: undefined, foreign: 0, stray: 0, errors: [], closing: false };
  ws.on('close', (code) => {
    if (!state.closing) abortRun(new Error(`the Kazoo 4.x WebSocket was closed (${code})`));
  });
  ws.on('message', (data) => {
    const frame = JSON.parse(data.toString('utf8'));
    if (frame.action !== 'event') {
      state.errors.push(`unexpected frame ${JSON.stringify(frame).slice(0, 200)}`);
      return;
    }
    const vars = frame.data.custom_channel_vars;
    if (!vars || vars.account_id !== BENCH_ACCOUNT) {
      state.foreign++;
      return;
    }
    const current = state.current;
    if (current && frame.data.call_id.startsWith(current.prefix)) current.hit(0);
    else state.stray++;
  });
  try {
    return await scenario(
      'bh-ws-1',
      'Blackhole, 1 Kazoo 4.x WebSocket client',
      'events/s',
      { messages: CONFIG.n, deliveriesPerMessage: 1, serverPid: gateway.pid },
      async (count) => {
        const prefix = newPrefix('w');
        const messages = buildMessages(BENCH_ACCOUNT, prefix, count);
        state.current = new Completion(1, count, prefix, `${count} Blackhole Kazoo 4.x events`);
        const t0 = performance.now();
        await publishAll(publisher, messages);
        await state.current.wait(CONFIG.runTimeoutMs);
        if (state.errors.length) throw new Error(`ws client errors: ${state.errors.join('; ')}`);
        return { ms: state.current.lastAt - t0, items: count };
      },
    );
  } finally {
    state.closing = true;
    await closeWs(ws).catch(() => ws.terminate());
  }
}

async function measureRawSocketIo(server, clients, mode) {
  const sockets = await connectSocketIo(server.url, clients);
  const state = { current: undefined, stray: 0, closing: false };
  sockets.forEach((socket, index) => {
    socket.on('CHANNEL_CREATE', (event) => {
      const current = state.current;
      if (current && event['Call-ID'].startsWith(current.prefix)) current.hit(index);
      else state.stray++;
    });
    socket.on('disconnect', (reason) => {
      if (!state.closing)
        abortRun(new Error(`raw socket.io client ${index} was disconnected: ${reason}`));
    });
  });
  const payload = callEvent(BENCH_ACCOUNT, 'x');
  let blastId = 0;
  try {
    const id = mode === 'broadcast' ? 'raw-sio-k' : 'raw-sio-k-each';
    const label =
      mode === 'broadcast'
        ? `raw socket.io, ${clients} clients, io.emit (encoded once)`
        : `raw socket.io, ${clients} clients, socket.emit each`;
    const options = { messages: CONFIG.nK, deliveriesPerMessage: clients, serverPid: server.pid };
    return await scenario(id, label, 'deliveries/s', options, async (count) => {
      const prefix = newPrefix('r');
      state.current = new Completion(
        clients,
        count,
        prefix,
        `${clients}×${count} raw socket.io events`,
      );
      const id = ++blastId;
      const blasted = new Promise((resolve, reject) => {
        const onMessage = (message) => {
          if (message.type === 'failed')
            reject(new Error(`raw socket.io server: ${message.message}`));
          else if (message.type === 'blasted' && message.id === id) resolve();
          else return;
          server.child.off('message', onMessage);
        };
        server.child.on('message', onMessage);
      });
      const t0 = performance.now();
      server.child.send({ type: 'blast', id, n: count, prefix, payload, mode });
      await deadline(
        Promise.race([blasted, aborted]),
        CONFIG.runTimeoutMs,
        'the raw socket.io server to emit',
      );
      await state.current.wait(CONFIG.runTimeoutMs);
      return { ms: state.current.lastAt - t0, items: clients * count };
    });
  } finally {
    state.closing = true;
    await closeSocketIo(sockets).catch(() => sockets.forEach((s) => s.close()));
  }
}

// ---------------------------------------------------------------------------------------------
// Report.

function report(meta) {
  const order = [
    'raw-amqp',
    'raw-amqp-ack',
    'bh-sio-1',
    'bh-ws-1',
    'bh-sio-k-clean',
    'bh-sio-k',
    'raw-sio-k',
    'raw-sio-k-each',
  ];
  const rows = order.filter((id) => results[id]).map((id) => ({ id, ...results[id] }));
  const k = CONFIG.k;
  // [key, label, numerator, denominator]; the first two are the headline ratios.
  const ratioDefs = [
    [
      'bh-sio-1 / raw-amqp',
      'Blackhole, 1 socket.io client ÷ raw RabbitMQ (noAck)',
      'bh-sio-1',
      'raw-amqp',
    ],
    [
      'bh-sio-k / raw-sio-k',
      `Blackhole, ${k} socket.io clients (other account interleaved) ÷ raw socket.io, ${k} clients (io.emit)`,
      'bh-sio-k',
      'raw-sio-k',
    ],
    [
      'bh-ws-1 / raw-amqp',
      'Blackhole, 1 Kazoo 4.x WebSocket client ÷ raw RabbitMQ (noAck)',
      'bh-ws-1',
      'raw-amqp',
    ],
    [
      'bh-sio-1 / raw-amqp-ack',
      'Blackhole, 1 socket.io client ÷ raw RabbitMQ (ack, prefetch 200)',
      'bh-sio-1',
      'raw-amqp-ack',
    ],
    [
      'bh-sio-k / raw-sio-k-each',
      `Blackhole, ${k} clients (interleaved) ÷ raw socket.io, emit each`,
      'bh-sio-k',
      'raw-sio-k-each',
    ],
    [
      'bh-sio-k-clean / raw-sio-k',
      `Blackhole, ${k} clients (bench account only) ÷ raw socket.io, io.emit`,
      'bh-sio-k-clean',
      'raw-sio-k',
    ],
    [
      'bh-sio-k-clean / raw-sio-k-each',
      `Blackhole, ${k} clients (bench account only) ÷ raw socket.io, emit each`,
      'bh-sio-k-clean',
      'raw-sio-k-each',
    ],
  ];
  const ratios = {};
  for (const [key, , a, b] of ratioDefs) {
    if (results[a] && results[b]) ratios[key] = round(results[a].median / results[b].median, 2);
  }

  const lines = [''];
  lines.push(
    `Blackhole throughput: node ${meta.node}, ${meta.cpus} CPUs (${meta.cpuModel}), ${meta.platform}`,
  );
  lines.push(
    `${fmt(CONFIG.n)} messages per run (${fmt(CONFIG.nK)} in the ${k}-client runs), median of ${CONFIG.reps} runs ` +
      `after a warm-up, ${meta.payloadBytes}-byte CHANNEL_CREATE payload`,
  );
  lines.push('');
  const head = [
    'scenario',
    'median',
    'unit',
    'runs',
    'CPU µs per delivery: server',
    'bench',
    'broker',
  ];
  const us = (value) => (value === undefined ? '-' : value.toFixed(1));
  const table = rows.map((r) => [
    r.label,
    fmt(r.median),
    r.unit,
    r.runs.map((x) => fmt(x.rate)).join(' / '),
    us(r.cpuMicrosPerDelivery.server),
    us(r.cpuMicrosPerDelivery.bench),
    us(r.cpuMicrosPerDelivery.broker),
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...table.map((row) => row[i].length)));
  const right = new Set([1, 4, 5, 6]);
  const line = (cells) =>
    cells
      .map((c, i) => (right.has(i) ? c.padStart(widths[i]) : c.padEnd(widths[i])))
      .join('  ')
      .trimEnd();
  lines.push(line(head));
  lines.push(widths.map((w) => '-'.repeat(w)).join('  '));
  table.forEach((row) => lines.push(line(row)));
  lines.push(
    'CPU µs per delivery = user+sys CPU over the measured runs ÷ events received by clients. server: the gateway',
  );
  lines.push(
    `or the raw socket.io process; bench: this process (publisher + clients); broker: RabbitMQ${
      BROKER_PID ? '' : ' (not found: remote broker?)'
    }. All share ${meta.cpus} cores.`,
  );
  lines.push('');
  lines.push('Ratios of medians (same run):');
  const labelWidth = Math.max(...ratioDefs.map(([, label]) => label.length));
  ratioDefs.forEach(([key, label], index) => {
    if (index === 2 && Object.keys(ratios).length > 2) lines.push('  more:');
    if (ratios[key] !== undefined)
      lines.push(`  ${label.padEnd(labelWidth)}  ${ratios[key].toFixed(2)}`);
  });
  lines.push('');
  const mib = (kib) => (kib === undefined ? '?' : `${(kib / 1024).toFixed(1)} MiB`);
  const g = meta.gateway;
  if (g) {
    lines.push(
      `Gateway process: peak RSS (VmHWM) ${mib(g.peakRssKiB)} (${mib(g.bootRssKiB)} after boot; peak after ` +
        rows
          .filter((r) => r.id.startsWith('bh-'))
          .map((r) => `${r.id} ${mib(r.serverPeakRssKiB)}`)
          .join(', ') +
        `); CPU ${g.cpuSeconds.toFixed(2)} s user+sys during the Blackhole scenarios (${g.cpuSecondsTotal.toFixed(2)} s including boot)`,
    );
  }
  if (meta.rawSocketIo) {
    lines.push(
      `Raw socket.io process: peak RSS ${mib(meta.rawSocketIo.peakRssKiB)}, CPU ${meta.rawSocketIo.cpuSeconds.toFixed(2)} s`,
    );
  }
  const iso = results['bh-sio-k'] && results['bh-sio-k'].isolation;
  if (iso) {
    lines.push(
      `Isolation under load: ${iso.pass ? 'PASS' : 'FAIL'} (${fmt(iso.otherPublished)} other-account events ` +
        `interleaved; ${iso.foreignReceived} reached the bench clients; /health: delivered = K×N and ` +
        `received >= 2N in every run: ${iso.healthChecks.every((c) => c.delivered === c.expectedDelivered && c.received >= c.expectedReceivedAtLeast)})`,
    );
  }
  lines.push(
    `Total ${(meta.elapsedMs / 1000).toFixed(1)} s; JSON in ${path.relative(ROOT, OUTPUT)}`,
  );
  process.stdout.write(`${lines.join('\n')}\n`);
  return { ratios };
}

// ---------------------------------------------------------------------------------------------

async function main() {
  const started = performance.now();
  const watchdog = setTimeout(() => {
    process.stderr.write(
      `bench: the whole run took longer than ${CONFIG.totalTimeoutMs / 1000} s, giving up\n`,
    );
    process.exit(1);
  }, CONFIG.totalTimeoutMs);
  watchdog.unref();

  const standInPath = path.join(ROOT, 'dist', 'demo', 'crossbar-stand-in.js');
  if (!fs.existsSync(path.join(ROOT, 'dist', 'main.js')) || !fs.existsSync(standInPath)) {
    throw new Error('dist/ is missing: run `npm run build` first (npm run bench does)');
  }
  const { CrossbarStandIn } = require(standInPath);
  const crossbar = await deadline(
    CrossbarStandIn.start(),
    STEP_TIMEOUT_MS,
    'the Crossbar stand-in',
  );
  BENCH_ACCOUNT = crossbar.addAccount();
  OTHER_ACCOUNT = crossbar.addAccount();
  const token = crossbar.issueToken(BENCH_ACCOUNT);

  const meta = {
    node: process.version,
    cpus: os.cpus().length,
    cpuModel: os.cpus()[0] ? os.cpus()[0].model.trim() : 'unknown',
    platform: `${os.platform()} ${os.arch()}`,
    date: new Date().toISOString(),
    config: { ...CONFIG, amqpUrl: undefined },
    payloadBytes: Buffer.byteLength(
      JSON.stringify(callEvent(BENCH_ACCOUNT, `bench${RUN_ID}s1n19999`)),
    ),
  };

  const publisherConnection = await deadline(
    amqp.connect(CONFIG.amqpUrl),
    STEP_TIMEOUT_MS,
    `RabbitMQ at ${CONFIG.amqpUrl.replace(/\/\/[^@]*@/, '//')}`,
  );
  try {
    const publisher = await publisherConnection.createConfirmChannel();
    await publisher.assertExchange(EXCHANGE, 'topic', { durable: false, autoDelete: false });

    log(`bench ${RUN_ID}: N=${CONFIG.n}, N_K=${CONFIG.nK}, K=${CONFIG.k}, reps=${CONFIG.reps}`);
    if (wanted('raw-amqp')) await measureRawAmqp(publisher, { ack: false });
    if (wanted('raw-amqp-ack')) await measureRawAmqp(publisher, { ack: true });

    if (wanted('bh-sio-1', 'bh-ws-1', 'bh-sio-k-clean', 'bh-sio-k')) {
      log('- starting the gateway');
      const gateway = await startGateway(crossbar.url);
      await withChild(gateway.entry, async () => {
        const bootRssKiB = vmKiB(gateway.pid, 'VmRSS');
        const cpuAtStart = cpuSeconds(gateway.pid);
        if (wanted('bh-sio-1')) await measureGatewaySocketIo(gateway, publisher, token, 'bh-sio-1');
        if (wanted('bh-ws-1')) await measureGatewayWs(gateway, publisher, token);
        for (const id of ['bh-sio-k-clean', 'bh-sio-k']) {
          if (wanted(id)) await measureGatewaySocketIo(gateway, publisher, token, id);
        }
        meta.gateway = {
          pid: gateway.pid,
          bootRssKiB,
          peakRssKiB: vmKiB(gateway.pid, 'VmHWM'),
          cpuSeconds: round(cpuSeconds(gateway.pid) - cpuAtStart, 2),
          cpuSecondsTotal: round(cpuSeconds(gateway.pid), 2),
        };
      });
    }

    if (wanted('raw-sio-k', 'raw-sio-k-each')) {
      log('- starting the raw socket.io server');
      const raw = await startRawSocketIo();
      await withChild(raw.entry, async () => {
        if (wanted('raw-sio-k')) await measureRawSocketIo(raw, CONFIG.k, 'broadcast');
        if (wanted('raw-sio-k-each')) await measureRawSocketIo(raw, CONFIG.k, 'per-socket');
        meta.rawSocketIo = {
          peakRssKiB: vmKiB(raw.pid, 'VmHWM'),
          cpuSeconds: round(cpuSeconds(raw.pid), 2),
        };
      });
    }
  } finally {
    await publisherConnection.close().catch(() => {});
    await crossbar.stop().catch(() => {});
  }

  meta.elapsedMs = Math.round(performance.now() - started);
  const { ratios } = report(meta);
  const isolation = results['bh-sio-k'] && results['bh-sio-k'].isolation;
  fs.mkdirSync(path.dirname(OUTPUT), { recursive: true });
  fs.writeFileSync(
    OUTPUT,
    `${JSON.stringify({ meta, scenarios: results, ratios, isolation }, null, 2)}\n`,
  );
  return isolation && !isolation.pass ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (error) => {
    process.stderr.write(`bench failed: ${error && error.stack ? error.stack : error}\n`);
    process.exit(1);
  },
);
