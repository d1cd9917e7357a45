'use strict';
/**
 * `npm run bench`: Blackhole against raw baselines measured in the same run, on the same
 * machine, interleaved round by round (never as timed assertions in tests). Three ratios:
 *
 *   1. Ingest   messages/s the gateway consumes from `callevt` and sends to one subscribed
 *               socket.io client ÷ a plain amqplib consumer (own exchange, queue bound the same
 *               way, same prefetch, manual acks, same bodies). Target ≥ 0.80.
 *   2. Fan-out  deliveries/s to 1,000 socket.io v4 clients of one account bound to
 *               `call.CHANNEL_CREATE.*` ÷ a bare socket.io 4.8.3 server doing `io.emit` of the
 *               same payloads to 1,000 clients. Target ≥ 0.85. (Kazoo 4.x plain-WebSocket
 *               fan-out vs a bare `ws` server is shown too, without a target.)
 *   3. Memory   RSS per idle subscribed connection of the gateway ÷ per connection of the bare
 *               socket.io server, each (RSS with N clients − RSS idle) / N after a forced GC,
 *               N = 20,000 (8,000 quick). Target ≤ 1.20. The open-file limit is raised for it
 *               (lib/scale.js); where the hard limit cannot be raised, N is cut to fit under it.
 *   4. Latency  p50 and p99 publish-to-socket latency, 2,000 events/s spread evenly over 100
 *               accounts with 10 socket.io clients each, ÷ the same through a bare socket.io
 *               server whose amqplib consumer emits to a room per account (lib/scale.js). No
 *               target; every client must get exactly its own account's events.
 *
 * How a round is timed, the same way for a server and its baseline:
 *   - Ingest: the consumer process (gateway or raw consumer) is stopped (SIGSTOP) while the
 *     round's messages are published and confirmed, so its queue is full; the clock runs from
 *     SIGCONT to the last receipt (the client's, or the raw consumer's ack). The publisher is
 *     not part of either measurement.
 *   - Fan-out: the gateway is stopped while the round's events are published, then resumed;
 *     the baseline server gets its payloads over IPC ahead of time, then a `go`. The clock runs
 *     until every client has every event.
 * Clients live in BENCH_WORKERS child processes (bench/client-worker.js), thin clients that
 * count frames without decoding them, connected to the gateway and the baselines alike.
 * RSS is read from /proc of the server processes after a GC (bench/server-probe.js).
 *
 * Options: `--quick` (fewer and shorter rounds). Environment: AMQP_URL, AMQP_PREFETCH (200),
 * BENCH_CLIENTS (1000), BENCH_MEMORY_CLIENTS (connections of the memory reading, 20000; 8000
 * quick), BENCH_LATENCY_RATE (events/s, 2000), BENCH_LATENCY_ACCOUNTS (100),
 * BENCH_LATENCY_SOCKETS_PER_ACCOUNT (10), BENCH_LATENCY_S (measured seconds per server, 10 in
 * 2 rounds; 2 in 1 quick),
 * BENCH_WORKERS (4), BENCH_ROUNDS (5; 3 quick), BENCH_INGEST_N (messages
 * per ingest round, 20000; 5000 quick), BENCH_FANOUT_N (events per fan-out round, 200; 100
 * quick), BENCH_WS (0 skips the plain-WebSocket fan-out), BENCH_ONLY (comma-separated of
 * ingest, fanout, memory, ws, latency, replay, storm), BENCH_PROFILE (comma-separated phases whose measured rounds get a V8
 * CPU profile of the gateway in test-output/profile-<phase>.cpuprofile, summarized after the
 * table, with src/ lines from the source maps; profiling slows the gateway, so ratios of such
 * a run are not comparable), BENCH_GATEWAY_NODE_ARGS (extra node flags for the gateway),
 * BENCH_HEAP_SNAPSHOTS (1: heap snapshots of both socket.io servers idle and with the clients,
 * in test-output/, and what the connections added by constructor), BENCH_TIMEOUT_S (whole
 * run, 600), BENCH_REPLAY_N (events per replay-log round, 10000; 2000 quick: live delivery
 * with the replay log on vs off, and replay speed, in bench/replay-rounds.js; BENCH_ONLY=replay
 * runs only those), BENCH_STORM_CLIENTS (socket.io clients of the reconnect storm, 5000; 1000
 * quick), BENCH_STORM_ACCOUNTS (100), BENCH_STORM_MISSED (events per account published while
 * they are away, 20), BENCH_STORM_PROBE_RATE (the live probe's events/s, 500),
 * BENCH_STORM_QUIET_S (the probe's seconds before the storm, 3; 2 quick), BENCH_STORM_TIMEOUT_S
 * (the storm round's deadline, 240): bench/storm-round.js, BENCH_ONLY=storm runs only it.
 * Output: the table on stdout, the same as JSON in test-output/bench.json. Exit code 1 when a
 * run fails or the isolation check does not pass; a missed target only prints FAIL, since
 * timings on a shared machine are not a verdict on a commit.
 */
const { randomBytes } = require('node:crypto');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { performance } = require('node:perf_hooks');
const amqp = require('amqplib');

const S = require('./lib/support');
const scale = require('./lib/scale');
const { buildMessages, publishAll, callEvent } = require('./lib/messages');
const { runReplayRounds, replayReport } = require('./replay-rounds');
const { runStormRound, stormReport } = require('./storm-round');

const ROOT = path.resolve(__dirname, '..');
const QUICK = process.argv.includes('--quick') || process.env.BENCH_QUICK === '1';

function intEnv(name, fallback) {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < 0) {
    throw new Error(`${name} must be a non-negative integer, got "${raw}"`);
  }
  return value;
}

const CONFIG = {
  amqpUrl: process.env.AMQP_URL || 'amqp://guest:guest@127.0.0.1:5672',
  prefetch: intEnv('AMQP_PREFETCH', 200),
  clients: intEnv('BENCH_CLIENTS', 1000),
  // Per-connection RSS is a few KiB against a process RSS that moves by several MiB on its own
  // (V8's young generation, malloc arenas): more connections make the reading meaningful.
  // 20,000 is the scale the gateway is sized for on one node; the open-file limit is lifted for
  // it (lib/scale.js).
  memoryClients: Math.max(
    intEnv('BENCH_CLIENTS', 1000),
    intEnv('BENCH_MEMORY_CLIENTS', QUICK ? 8000 : 20000),
  ),
  workers: Math.max(1, intEnv('BENCH_WORKERS', 4)),
  rounds: Math.max(1, intEnv('BENCH_ROUNDS', QUICK ? 3 : 5)),
  ingestN: intEnv('BENCH_INGEST_N', QUICK ? 5000 : 20000),
  fanoutN: intEnv('BENCH_FANOUT_N', QUICK ? 100 : 200),
  ws: intEnv('BENCH_WS', 1) !== 0,
  latency: {
    accounts: Math.max(1, intEnv('BENCH_LATENCY_ACCOUNTS', 100)),
    socketsPerAccount: Math.max(1, intEnv('BENCH_LATENCY_SOCKETS_PER_ACCOUNT', 10)),
    rate: Math.max(1, intEnv('BENCH_LATENCY_RATE', 2000)),
    seconds: Math.max(1, intEnv('BENCH_LATENCY_S', QUICK ? 2 : 10)),
    rounds: QUICK ? 1 : 2,
    workers: Math.max(1, intEnv('BENCH_WORKERS', 4)),
  },
  replayN: intEnv('BENCH_REPLAY_N', QUICK ? 2000 : 10000),
  storm: {
    clients: Math.max(1, intEnv('BENCH_STORM_CLIENTS', QUICK ? 1000 : 5000)),
    accounts: Math.max(1, intEnv('BENCH_STORM_ACCOUNTS', 100)),
    missed: Math.max(1, intEnv('BENCH_STORM_MISSED', 20)),
    probeRate: Math.max(1, intEnv('BENCH_STORM_PROBE_RATE', 500)),
    quietS: Math.max(1, intEnv('BENCH_STORM_QUIET_S', QUICK ? 2 : 3)),
    timeoutS: Math.max(1, intEnv('BENCH_STORM_TIMEOUT_S', 240)),
  },
  totalTimeoutMs: intEnv('BENCH_TIMEOUT_S', 600) * 1000,
  heapSnapshots: intEnv('BENCH_HEAP_SNAPSHOTS', 0) !== 0,
  profile: (process.env.BENCH_PROFILE || '').split(',').filter(Boolean),
  only: (process.env.BENCH_ONLY || '')
    .split(',')
    .map((id) => id.trim())
    .filter(Boolean),
};
const wanted = (phase) => CONFIG.only.length === 0 || CONFIG.only.includes(phase);
const TARGETS = { ingest: 0.8, fanout: 0.85, memory: 1.2 };

const CALL_EXCHANGE = 'callevt';
const BINDING = 'call.CHANNEL_CREATE.*';
const RUN_ID = randomBytes(3).toString('hex');
/** The baseline's own exchange and queue: nothing of Kazoo's is touched. */
const RAW_EXCHANGE = `bench.${RUN_ID}.callevt`;
const RAW_QUEUE = `bench.${RUN_ID}.ingest`;
const OUTPUT = path.join(ROOT, 'test-output', 'bench.json');
const ROUND_TIMEOUT_MS = 60000;
const BROKER_PID = S.findBrokerPid(CONFIG.amqpUrl);

let prefixCounter = 0;
/** Unique to one round: Call-IDs are `<prefix><i>`, and `n` ends it so no prefix contains another. */
const newPrefix = (tag) => `bench${RUN_ID}${tag}${++prefixCounter}n`;

// ---------------------------------------------------------------------------------------------
// Processes.

const SERVER_PROBE = path.join(__dirname, 'server-probe.js');

async function startGateway(crossbarUrl) {
  const port = await S.freePort();
  const extra = (process.env.BENCH_GATEWAY_NODE_ARGS || '').split(/\s+/).filter(Boolean);
  const entry = S.startNode(
    'gateway (node dist/main.js)',
    ['--expose-gc', '-r', SERVER_PROBE, ...extra, path.join(ROOT, 'dist', 'main.js')],
    {
      cwd: ROOT,
      env: {
        ...process.env,
        PORT: String(port),
        HOST: '127.0.0.1',
        CROSSBAR_URL: crossbarUrl,
        AMQP_URL: CONFIG.amqpUrl,
        AMQP_PREFETCH: String(CONFIG.prefetch),
        LOG_LEVEL: 'warn',
        ...S.UNCAPPED_GATEWAY_ENV,
        // Per-node queues, as the raw baselines: the replay log has rounds of its own.
        REPLAY_WINDOW_S: '0',
      },
    },
  );
  entry.url = `http://127.0.0.1:${port}`;
  await S.pollUntil(async () => (await S.getJson(`${entry.url}/health`, 1000)).status === 200, {
    timeoutMs: 30000,
    intervalMs: 100,
    what: `the gateway's GET /health to answer 200`,
  });
  return entry;
}

async function startRawServer(name, script, nodeArgs = []) {
  const entry = S.startNode(name, [...nodeArgs, path.join(__dirname, script)], { cwd: ROOT });
  const { port } = await S.firstMessage(entry, 'listening');
  entry.url = `http://127.0.0.1:${port}`;
  return entry;
}

async function startRawConsumer() {
  const entry = S.startNode(
    'raw amqplib consumer',
    [path.join(__dirname, 'raw-amqp-consumer.js')],
    {
      cwd: ROOT,
      env: {
        ...process.env,
        AMQP_URL: CONFIG.amqpUrl,
        BENCH_EXCHANGE: RAW_EXCHANGE,
        BENCH_QUEUE: RAW_QUEUE,
        BENCH_BINDING: BINDING,
        BENCH_PREFETCH: String(CONFIG.prefetch),
      },
    },
  );
  await S.firstMessage(entry, 'listening');
  return entry;
}

/** Tracks `done` reports of the workers: (group, prefix) → workers still to report. */
class Workers {
  constructor(count) {
    this.list = Array.from({ length: count }, (_, i) =>
      S.startNode(`client worker ${i}`, [path.join(__dirname, 'client-worker.js')], { cwd: ROOT }),
    );
    this.waiting = new Map();
    for (const worker of this.list) {
      worker.child.on('message', (message) => {
        if (message && message.type === 'done') {
          const key = `${message.group}\u0000${message.prefix}`;
          const wait = this.waiting.get(key);
          if (wait && --wait.left === 0) {
            this.waiting.delete(key);
            wait.resolve(performance.now());
          }
        }
      });
    }
    this.members = new Map(); // group → workers holding some of its clients
    this.ready = Promise.all(this.list.map((worker) => S.firstMessage(worker, 'ready')));
  }

  get pids() {
    return this.list.map((w) => w.pid);
  }

  /** Spreads `count` clients of a group evenly over the workers (or puts them on one). */
  async connect(group, { kind, url, count, accountId, subscribe, spread = true }) {
    const shares = spread
      ? this.list.map(
          (_, i) => Math.floor(count / this.list.length) + (i < count % this.list.length ? 1 : 0),
        )
      : this.list.map((_, i) => (i === 0 ? count : 0));
    const holders = [];
    await Promise.all(
      this.list.map((worker, i) => {
        if (shares[i] === 0) return undefined;
        holders.push(worker);
        return worker.request(
          { type: 'connect', group, kind, url, count: shares[i], accountId, subscribe },
          120000,
          `${shares[i]} ${kind} clients of ${group} to connect (worker ${i})`,
        );
      }),
    );
    this.members.set(group, holders);
  }

  /**
   * Arms a round on every worker of `group`; resolves with `{done}`, a promise of the time the
   * last worker reported (wrapped, or awaiting this would wait for the round itself).
   */
  async expect(group, prefix, n) {
    const holders = this.members.get(group);
    const done = new Promise((resolve) =>
      this.waiting.set(`${group}\u0000${prefix}`, { left: holders.length, resolve }),
    );
    await Promise.all(holders.map((w) => w.request({ type: 'expect', group, prefix, n })));
    return { done };
  }

  async close(group) {
    const holders = this.members.get(group) || [];
    await Promise.all(holders.map((w) => w.request({ type: 'close', group }, 60000)));
    this.members.delete(group);
  }

  /** Closes every group still open (a gateway that stops tells its clients, who would fail). */
  async closeAll() {
    for (const group of [...this.members.keys()]) await this.close(group);
  }

  /** foreign/stray counters of every group, summed over workers. */
  async counts() {
    const totals = {};
    for (const worker of this.list) {
      const { groups } = await worker.request({ type: 'counts' });
      for (const [name, c] of Object.entries(groups)) {
        const t = (totals[name] ??= { clients: 0, foreign: 0, stray: 0 });
        t.clients += c.clients;
        t.foreign += c.foreign;
        t.stray += c.stray;
      }
    }
    return totals;
  }
}

// ---------------------------------------------------------------------------------------------
// Rounds: each returns {ms, deliveries, cpu: {server, clients, broker}} (CPU seconds).

function cpuNow(serverPid, workerPids) {
  const read = (pid) => {
    try {
      return S.cpuSeconds(pid);
    } catch {
      return undefined;
    }
  };
  return {
    server: read(serverPid),
    clients: workerPids.reduce((sum, pid) => sum + (read(pid) || 0), 0),
    broker: BROKER_PID === undefined ? undefined : read(BROKER_PID),
  };
}

function cpuDelta(before, after) {
  const delta = {};
  for (const key of Object.keys(before)) {
    if (before[key] !== undefined && after[key] !== undefined)
      delta[key] = after[key] - before[key];
  }
  return delta;
}

/**
 * Stops `consumer` while `messages` are published to `exchange` and confirmed, resumes it and
 * waits for `done` (a promise of the time of the last receipt).
 */
async function drainRound(consumer, publisher, exchange, messages, done, workerPids) {
  const before = cpuNow(consumer.pid, workerPids);
  process.kill(consumer.pid, 'SIGSTOP');
  try {
    await publishAll(publisher, exchange, messages, {
      deadline: S.deadline,
      timeoutMs: ROUND_TIMEOUT_MS,
    });
  } finally {
    process.kill(consumer.pid, 'SIGCONT');
  }
  const t0 = performance.now();
  const last = await S.deadline(
    done,
    ROUND_TIMEOUT_MS,
    `${consumer.name} to drain ${messages.length} messages`,
  );
  return { ms: last - t0, cpu: cpuDelta(before, cpuNow(consumer.pid, workerPids)) };
}

/**
 * `n` call events through the gateway. With `routedOnly`, all but the last are of an account
 * nobody on the node watches: the `callevt` keys carry no account, so they all reach its queue
 * and are read and routed (ingest proper); the last, of the subscribed account, marks the end.
 * Without it, every one is delivered to the subscribed client.
 */
async function gatewayIngestRound(ctx, n, { routedOnly = false } = {}) {
  const prefix = newPrefix(routedOnly ? 'u' : 'i');
  const delivered = routedOnly ? 1 : n;
  const messages = [
    ...buildMessages(ctx.accounts.other, `${prefix}x`, n - delivered),
    ...buildMessages(ctx.accounts.ingest, prefix, delivered),
  ];
  const { done } = await ctx.workers.expect('gw-ingest', prefix, delivered);
  const round = await drainRound(
    ctx.gateway,
    ctx.publisher,
    CALL_EXCHANGE,
    messages,
    done,
    ctx.workers.pids,
  );
  return { ...round, deliveries: n };
}

async function rawIngestRound(ctx, n) {
  const prefix = newPrefix('r');
  const messages = buildMessages(ctx.accounts.ingest, prefix, n);
  const done = new Promise((resolve) => {
    const onMessage = (message) => {
      if (message && message.type === 'done' && message.prefix === prefix) {
        ctx.rawConsumer.child.off('message', onMessage);
        resolve(performance.now());
      }
    };
    ctx.rawConsumer.child.on('message', onMessage);
  });
  await ctx.rawConsumer.request({ type: 'expect', prefix, n, parse: false });
  const round = await drainRound(ctx.rawConsumer, ctx.publisher, RAW_EXCHANGE, messages, done, []);
  return { ...round, deliveries: n };
}

/** Gateway fan-out; with `other`, another account's events are interleaved (isolation). */
async function gatewayFanoutRound(ctx, group, accountId, n, { other } = {}) {
  const prefix = newPrefix('f');
  let messages = buildMessages(accountId, prefix, n);
  if (other) {
    // other₀, ours₀, other₁, ours₁, …: once every client has the last of ours, the gateway has
    // handled (and would have sent) every one of the others.
    const others = buildMessages(other, newPrefix('o'), n);
    messages = messages.flatMap((message, i) => [others[i], message]);
  }
  const { done } = await ctx.workers.expect(group, prefix, n);
  const round = await drainRound(
    ctx.gateway,
    ctx.publisher,
    CALL_EXCHANGE,
    messages,
    done,
    ctx.workers.pids,
  );
  return { ...round, deliveries: n * ctx.workers.clientsOf(group) };
}

async function rawFanoutRound(ctx, server, group, accountId, n) {
  const prefix = newPrefix('b');
  const { done } = await ctx.workers.expect(group, prefix, n);
  await server.request({ type: 'prepare', prefix, n, accountId });
  const before = cpuNow(server.pid, ctx.workers.pids);
  const t0 = performance.now();
  await server.request({ type: 'go' }, ROUND_TIMEOUT_MS, `${server.name} to send`);
  const last = await S.deadline(done, ROUND_TIMEOUT_MS, `${group} clients to receive ${n} events`);
  return {
    ms: last - t0,
    cpu: cpuDelta(before, cpuNow(server.pid, ctx.workers.pids)),
    deliveries: n * ctx.workers.clientsOf(group),
  };
}

/** Rates and CPU of a scenario's measured rounds. */
class Scenario {
  constructor(id, label, unit) {
    Object.assign(this, { id, label, unit, rounds: [] });
  }

  add({ ms, deliveries, cpu }) {
    this.rounds.push({
      ms: Math.round(ms),
      rate: Math.round((deliveries * 1000) / ms),
      deliveries,
      cpu,
    });
  }

  get median() {
    return S.median(this.rounds.map((r) => r.rate));
  }

  /** CPU µs per delivery over all measured rounds, per process kind. */
  cpuMicros() {
    const deliveries = this.rounds.reduce((sum, r) => sum + r.deliveries, 0);
    const out = {};
    for (const key of ['server', 'clients', 'broker']) {
      const rounds = this.rounds.filter((r) => r.cpu[key] !== undefined);
      if (rounds.length !== this.rounds.length) continue;
      out[key] = S.round((rounds.reduce((s, r) => s + r.cpu[key], 0) * 1e6) / deliveries, 2);
    }
    return out;
  }

  toJSON() {
    return {
      label: this.label,
      unit: this.unit,
      median: this.median,
      rounds: this.rounds,
      cpuMicrosPerDelivery: this.cpuMicros(),
    };
  }
}

/**
 * One warm-up of each, then `rounds` pairs, alternating which goes first so that neither
 * always runs right after the other. With `profile` ({phase, entry}), the gateway's CPU profile
 * covers the measured rounds of both (it idles during the baseline's).
 */
async function interleave(pairs, rounds, profile) {
  for (const { scenario, warmUp } of pairs) {
    S.log(`- ${scenario.label}: warm-up`);
    await warmUp();
  }
  const profiling = profile && CONFIG.profile.includes(profile.phase);
  if (profiling) await profile.entry.request({ type: 'bench:profile-start' });
  for (let r = 0; r < rounds; r++) {
    const order = r % 2 === 0 ? pairs : [...pairs].reverse();
    for (const { scenario, run } of order) {
      scenario.add(await run());
      const last = scenario.rounds[scenario.rounds.length - 1];
      S.log(
        `  round ${r + 1}/${rounds} ${scenario.id}: ${S.fmt(last.rate)} ${scenario.unit} (${(last.ms / 1000).toFixed(2)} s)`,
      );
    }
  }
  if (profiling) {
    const file = path.join(ROOT, 'test-output', `profile-${profile.phase}.cpuprofile`);
    fs.mkdirSync(path.dirname(file), { recursive: true });
    await profile.entry.request({ type: 'bench:profile-stop', file }, 60000);
    profiles.push(file);
  }
}
const profiles = [];
const heapSnapshots = [];

// ---------------------------------------------------------------------------------------------
// Report.

function report(meta, scenarios, memory, isolation, latency) {
  const lines = [''];
  lines.push(
    `Blackhole vs raw baselines, same run: node ${meta.node}, ${meta.cpus} CPUs (${meta.cpuModel}), load average at start ${meta.loadAverage}`,
  );
  lines.push(
    `${CONFIG.rounds} interleaved rounds per scenario after a warm-up, medians; ${meta.bodyBytes}-byte CHANNEL_CREATE body; ` +
      `prefetch ${CONFIG.prefetch}; ${CONFIG.clients} clients in ${CONFIG.workers} worker processes`,
  );
  lines.push('');

  const rows = [];
  const ratioRow = (name, gw, base, target, higherIsBetter) => {
    if (!gw || !base) return;
    const ratio = gw.value / base.value;
    const pass =
      target === undefined
        ? 'info'
        : (higherIsBetter ? ratio >= target : ratio <= target)
          ? 'PASS'
          : 'FAIL';
    rows.push([
      name,
      gw.text,
      base.text,
      ratio.toFixed(2),
      target === undefined ? '-' : `${higherIsBetter ? '>=' : '<='} ${target.toFixed(2)}`,
      pass,
    ]);
    meta.verdicts[name] = { ratio: S.round(ratio, 3), target, result: pass };
  };
  const sc = (id) =>
    scenarios[id] && scenarios[id].rounds.length
      ? {
          value: scenarios[id].median,
          text: `${S.fmt(scenarios[id].median)} ${scenarios[id].unit}`,
        }
      : undefined;
  ratioRow(
    '1. Ingest (consume, read, route)',
    sc('gw-ingest-routed'),
    sc('raw-ingest'),
    TARGETS.ingest,
    true,
  );
  ratioRow(
    '   Ingest and delivery to 1 socket.io client',
    sc('gw-ingest'),
    sc('raw-ingest'),
    undefined,
    true,
  );
  ratioRow(
    `2. Fan-out, ${CONFIG.clients} socket.io v4 clients`,
    sc('gw-fanout'),
    sc('raw-fanout'),
    TARGETS.fanout,
    true,
  );
  if (memory) {
    const kib = (v) => ({ value: v, text: `${v.toFixed(1)} KiB/conn` });
    ratioRow(
      `3. Memory, RSS per connection, ${S.fmt(memory.gateway.connections)} idle`,
      kib(memory.gateway.perConnectionKiB),
      kib(memory.raw.perConnectionKiB),
      TARGETS.memory,
      false,
    );
    ratioRow(
      `   Memory, JS heap per connection`,
      kib(memory.gateway.heapPerConnectionKiB),
      kib(memory.raw.heapPerConnectionKiB),
      undefined,
      false,
    );
  }
  ratioRow(
    `   Fan-out, ${CONFIG.clients} Kazoo 4.x WebSocket clients`,
    sc('gw-ws-fanout'),
    sc('raw-ws-fanout'),
    undefined,
    true,
  );
  if (latency) {
    const ms = (v) => ({ value: v, text: `${v.toFixed(2)} ms` });
    const what = `${S.fmt(latency.rate)} events/s, ${S.fmt(latency.accounts * latency.socketsPerAccount)} sockets`;
    ratioRow(
      `4. Latency p50, ${what}`,
      ms(latency.gateway.p50),
      ms(latency.raw.p50),
      undefined,
      false,
    );
    ratioRow(
      `   Latency p99, ${what}`,
      ms(latency.gateway.p99),
      ms(latency.raw.p99),
      undefined,
      false,
    );
  }
  lines.push(
    ...table(['', 'Blackhole', 'baseline', 'ratio', 'target', 'result'], rows, new Set([1, 2, 3])),
  );
  lines.push('');

  const detail = Object.values(scenarios)
    .filter((s) => s.rounds.length)
    .map((s) => {
      const cpu = s.cpuMicros();
      const us = (v) => (v === undefined ? '-' : v.toFixed(2));
      return [
        s.label,
        S.fmt(s.median),
        s.unit,
        s.rounds.map((r) => S.fmt(r.rate)).join(' / '),
        us(cpu.server),
        us(cpu.clients),
        us(cpu.broker),
      ];
    });
  if (detail.length) {
    lines.push(
      ...table(
        ['scenario', 'median', 'unit', 'rounds', 'CPU µs/delivery: server', 'clients', 'broker'],
        detail,
        new Set([1, 4, 5, 6]),
      ),
    );
    lines.push(
      `CPU µs per delivery: user+sys CPU of the process during the measured rounds ÷ deliveries. server: the gateway or the`,
      `baseline; clients: the worker processes; broker: RabbitMQ${BROKER_PID ? ', including the publishing of each round' : ' (not found: remote broker?)'}.`,
      `Everything shares ${meta.cpus} cores with whatever else runs.`,
    );
  }
  if (memory) {
    const mib = (kib) => `${(kib / 1024).toFixed(1)} MiB`;
    const m = (name, x) =>
      `  ${name}: idle ${mib(x.idle.rssKiB)} (heap ${mib(x.idle.heapUsedKiB)}), with ${x.connections} ${x.what} ${mib(x.loaded.rssKiB)} ` +
      `(heap ${mib(x.loaded.heapUsedKiB)}, young generation ${mib(x.loaded.newSpaceKiB)}${x.loaded.unsettled ? ', unsettled' : ''}) → ` +
      `${x.perConnectionKiB.toFixed(1)} KiB RSS, ${x.heapPerConnectionKiB.toFixed(1)} KiB heap, ${x.externalPerConnectionKiB.toFixed(1)} KiB external per connection`;
    lines.push(
      '',
      'Memory (RSS from /proc once settled after forced GCs, less the emptied young generation; idle = after 20 connections came and went):',
    );
    lines.push(m('gateway', memory.gateway), m('bare socket.io', memory.raw));
  }
  if (latency) lines.push(...scale.latencyLines(latency));
  if (isolation) {
    lines.push(
      '',
      `Isolation under load: ${isolation.pass ? 'PASS' : 'FAIL'} (${S.fmt(isolation.otherPublished)} events of another account interleaved with ` +
        `${S.fmt(isolation.ownPublished)} of the bench account; ${isolation.foreign} frames reached a client of another account; ` +
        `/health delivered ${S.fmt(isolation.delivered)} of ${S.fmt(isolation.expectedDelivered)} expected, received ${S.fmt(isolation.received)} >= ${S.fmt(isolation.expectedReceivedAtLeast)})`,
    );
  }
  lines.push(
    `Total ${(meta.elapsedMs / 1000).toFixed(1)} s; JSON in ${path.relative(ROOT, OUTPUT)}`,
  );
  process.stdout.write(`${lines.join('\n')}\n`);
}

function table(head, rows, right) {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i].length)));
  const line = (cells) =>
    cells
      .map((c, i) => (right.has(i) ? c.padStart(widths[i]) : c.padEnd(widths[i])))
      .join('  ')
      .trimEnd();
  return [line(head), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)];
}

// ---------------------------------------------------------------------------------------------

async function measureMemory(entry, connect, what) {
  // A warm-up cycle first, so that code compiled for the connection path is in both readings.
  await connect('warm', 20);
  await entry.workers.close(entry.warmGroup);
  const idle = await S.settledRssKiB(entry.server);
  const snapshot = async (phase) => {
    if (!CONFIG.heapSnapshots) return undefined;
    const file = path.join(ROOT, 'test-output', `heap-${entry.tag}-${phase}.heapsnapshot`);
    fs.mkdirSync(path.dirname(file), { recursive: true });
    await entry.server.request({ type: 'bench:heap-snapshot', file }, 120000);
    return file;
  };
  const idleSnapshot = await snapshot('idle');
  // The fan-out clients stay connected for the fan-out rounds; the extra ones only count here.
  await connect('main', CONFIG.clients);
  const extra = CONFIG.memoryClients - CONFIG.clients;
  if (extra > 0) await connect('extra', extra);
  S.log(`  ${entry.server.name}: ${CONFIG.memoryClients} ${what}`);
  // RSS of this many connections drifts by a few hundred KiB between readings (their pings).
  const loaded = await S.settledRssKiB(entry.server, {
    grownNewSpace: true,
    toleranceKiB: Math.max(256, CONFIG.memoryClients / 20),
    maxReadings: 10,
  });
  const loadedSnapshot = await snapshot('loaded');
  S.log(`  ${entry.server.name}: RSS settled after ${loaded.readings} readings`);
  if (extra > 0) await entry.workers.close(entry.extraGroup);
  if (idleSnapshot)
    heapSnapshots.push({ what: `${entry.server.name}, ${what}`, idleSnapshot, loadedSnapshot });
  return {
    what,
    connections: CONFIG.memoryClients,
    idle,
    loaded,
    perConnectionKiB: (loaded.heldKiB - idle.heldKiB) / CONFIG.memoryClients,
    heapPerConnectionKiB: (loaded.heapUsedKiB - idle.heapUsedKiB) / CONFIG.memoryClients,
    externalPerConnectionKiB: (loaded.externalKiB - idle.externalKiB) / CONFIG.memoryClients,
  };
}

async function main() {
  const started = performance.now();
  // One descriptor per connection in the server, and a share of them in each client worker.
  const fdLimit = scale.raiseFdLimit(65536);
  if (fdLimit < CONFIG.memoryClients + 100) {
    // The server's own descriptors (listener, AMQP, stdio, epoll…) are a few dozen.
    const fit = Math.max(CONFIG.clients, fdLimit - 100);
    S.log(
      `warning: open-file limit ${fdLimit} (hard limit, and no CAP_SYS_RESOURCE to raise it): memory round cut to ${fit} connections`,
    );
    CONFIG.memoryClients = fit;
  }
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
  const crossbar = await S.deadline(
    CrossbarStandIn.start(),
    S.STEP_TIMEOUT_MS,
    'the Crossbar stand-in',
  );
  const accounts = {
    ingest: crossbar.addAccount(),
    fanout: crossbar.addAccount(),
    ws: crossbar.addAccount(),
    other: crossbar.addAccount(),
  };
  const subscription = (accountId) => ({
    auth_token: crossbar.issueToken(accountId),
    account_id: accountId,
    binding: BINDING,
  });

  const meta = {
    node: process.version,
    cpus: os.cpus().length,
    cpuModel: os.cpus()[0] ? os.cpus()[0].model.trim() : 'unknown',
    loadAverage: os
      .loadavg()
      .map((l) => l.toFixed(2))
      .join(' '),
    date: new Date().toISOString(),
    config: { ...CONFIG, amqpUrl: undefined },
    bodyBytes: Buffer.byteLength(
      JSON.stringify(callEvent(accounts.ingest, newPrefix('x') + '19999')),
    ),
    verdicts: {},
    fdLimit,
  };
  S.log(`bench ${RUN_ID}: ${JSON.stringify({ ...CONFIG, amqpUrl: undefined })}`);

  const scenarios = {
    'gw-ingest-routed': new Scenario(
      'gw-ingest-routed',
      'Blackhole ingest, events of unwatched accounts',
      'msg/s',
    ),
    'gw-ingest': new Scenario('gw-ingest', 'Blackhole ingest, 1 socket.io client', 'msg/s'),
    'raw-ingest': new Scenario(
      'raw-ingest',
      `raw amqplib, manual ack, prefetch ${CONFIG.prefetch}`,
      'msg/s',
    ),
    'gw-fanout': new Scenario(
      'gw-fanout',
      `Blackhole, ${CONFIG.clients} socket.io v4 clients`,
      'deliveries/s',
    ),
    'raw-fanout': new Scenario(
      'raw-fanout',
      `bare socket.io, ${CONFIG.clients} clients, io.emit`,
      'deliveries/s',
    ),
    'gw-ws-fanout': new Scenario(
      'gw-ws-fanout',
      `Blackhole, ${CONFIG.clients} Kazoo 4.x WebSocket clients`,
      'deliveries/s',
    ),
    'raw-ws-fanout': new Scenario(
      'raw-ws-fanout',
      `bare ws, ${CONFIG.clients} clients, send each`,
      'deliveries/s',
    ),
  };
  let memory;
  let isolation;
  let latency;

  const connection = await S.deadline(amqp.connect(CONFIG.amqpUrl), S.STEP_TIMEOUT_MS, 'RabbitMQ');
  try {
    const publisher = await connection.createConfirmChannel();
    await publisher.assertExchange(CALL_EXCHANGE, 'topic', { durable: false, autoDelete: false });

    S.log('- starting the gateway, the baselines and the client workers');
    const workers = new Workers(CONFIG.workers);
    workers.clientsOf = (group) => workers.sizes.get(group);
    workers.sizes = new Map();
    const connectGroup = async (group, options) => {
      await workers.connect(group, options);
      workers.sizes.set(group, options.count);
    };
    const [, gateway, rawSio, rawConsumer] = await Promise.all([
      workers.ready.then(() => undefined),
      startGateway(crossbar.url),
      startRawServer('bare socket.io server', 'raw-socketio-server.js', [
        '--expose-gc',
        '-r',
        SERVER_PROBE,
      ]),
      wanted('ingest') ? startRawConsumer() : undefined,
    ]);
    const ctx = { gateway, rawConsumer, publisher, workers, accounts };

    if (wanted('fanout') || wanted('memory')) {
      S.log(`- memory: idle, then ${CONFIG.memoryClients} socket.io clients on each server`);
      const gwMemory = await measureMemory(
        { server: gateway, workers, warmGroup: 'gw-warm', extraGroup: 'gw-memory', tag: 'gateway' },
        (phase, count) =>
          connectGroup({ warm: 'gw-warm', extra: 'gw-memory' }[phase] ?? 'gw-fanout', {
            kind: 'sio',
            url: gateway.url,
            count,
            accountId: accounts.fanout,
            subscribe: subscription(accounts.fanout),
          }),
        'subscribed socket.io clients',
      );
      const rawMemory = await measureMemory(
        {
          server: rawSio,
          workers,
          warmGroup: 'raw-warm',
          extraGroup: 'raw-memory',
          tag: 'socketio',
        },
        (phase, count) =>
          connectGroup({ warm: 'raw-warm', extra: 'raw-memory' }[phase] ?? 'raw-fanout', {
            kind: 'sio',
            url: rawSio.url,
            count,
            accountId: accounts.fanout,
          }),
        'connected socket.io clients',
      );
      memory = { gateway: gwMemory, raw: rawMemory };
    }

    if (wanted('ingest')) {
      await connectGroup('gw-ingest', {
        kind: 'sio',
        url: gateway.url,
        count: 1,
        accountId: accounts.ingest,
        subscribe: subscription(accounts.ingest),
        spread: false,
      });
      const n = CONFIG.ingestN;
      const warm = Math.min(n, 2000);
      await interleave(
        [
          {
            scenario: scenarios['raw-ingest'],
            warmUp: () => rawIngestRound(ctx, warm),
            run: () => rawIngestRound(ctx, n),
          },
          {
            scenario: scenarios['gw-ingest-routed'],
            warmUp: () => gatewayIngestRound(ctx, warm, { routedOnly: true }),
            run: () => gatewayIngestRound(ctx, n, { routedOnly: true }),
          },
          {
            scenario: scenarios['gw-ingest'],
            warmUp: () => gatewayIngestRound(ctx, warm),
            run: () => gatewayIngestRound(ctx, n),
          },
        ],
        CONFIG.rounds,
        { phase: 'ingest', entry: gateway },
      );
    }

    /**
     * Fan-out rounds of the gateway and of a bare server, interleaved: `kind` names the client
     * groups (`gw-<kind>`, `raw-<kind>`) and their scenarios.
     */
    const fanoutAgainst = (rawServer, kind, accountId, phase) => {
      const n = CONFIG.fanoutN;
      const warm = Math.max(1, Math.round(n / 4));
      const raw = `raw-${kind}`;
      const gw = `gw-${kind}`;
      return interleave(
        [
          {
            scenario: scenarios[raw],
            warmUp: () => rawFanoutRound(ctx, rawServer, raw, accountId, warm),
            run: () => rawFanoutRound(ctx, rawServer, raw, accountId, n),
          },
          {
            scenario: scenarios[gw],
            warmUp: () => gatewayFanoutRound(ctx, gw, accountId, warm),
            run: () => gatewayFanoutRound(ctx, gw, accountId, n),
          },
        ],
        CONFIG.rounds,
        { phase, entry: gateway },
      );
    };

    if (wanted('fanout')) {
      const n = CONFIG.fanoutN;
      await fanoutAgainst(rawSio, 'fanout', accounts.fanout, 'fanout');

      S.log(
        `- isolation: ${n} events of another account interleaved with ${n} of the bench account`,
      );
      const before = (await S.getJson(`${gateway.url}/health`)).body.events;
      await gatewayFanoutRound(ctx, 'gw-fanout', accounts.fanout, n, { other: accounts.other });
      const after = (await S.getJson(`${gateway.url}/health`)).body.events;
      const counts = await workers.counts();
      const foreign = Object.values(counts).reduce((sum, c) => sum + c.foreign, 0);
      isolation = {
        ownPublished: n,
        otherPublished: n,
        foreign,
        stray: Object.values(counts).reduce((sum, c) => sum + c.stray, 0),
        received: after.received - before.received,
        expectedReceivedAtLeast: 2 * n,
        delivered: after.delivered - before.delivered,
        expectedDelivered: n * CONFIG.clients,
        counts,
      };
      isolation.pass =
        foreign === 0 &&
        isolation.received >= isolation.expectedReceivedAtLeast &&
        isolation.delivered === isolation.expectedDelivered;
    }
    await workers.close('raw-fanout').catch(() => {});

    if (wanted('ws') && CONFIG.ws) {
      S.log(
        `- ${CONFIG.clients} Kazoo 4.x WebSocket clients on the gateway, ${CONFIG.clients} plain ws clients on a bare ws server`,
      );
      const rawWs = await startRawServer('bare ws server', 'raw-ws-server.js');
      await connectGroup('gw-ws-fanout', {
        kind: 'kazoo-ws',
        url: gateway.url,
        count: CONFIG.clients,
        accountId: accounts.ws,
        subscribe: subscription(accounts.ws),
      });
      await connectGroup('raw-ws-fanout', {
        kind: 'ws',
        url: rawWs.url,
        count: CONFIG.clients,
        accountId: accounts.ws,
      });
      await fanoutAgainst(rawWs, 'ws-fanout', accounts.ws, 'ws');
    }
    if (wanted('latency')) {
      latency = await scale.measureLatency({
        gatewayUrl: gateway.url,
        gatewayPid: gateway.pid,
        crossbar,
        publisher,
        gatewayExchange: CALL_EXCHANGE,
        rawExchange: `bench.${RUN_ID}.latency`,
        binding: BINDING,
        prefetch: CONFIG.prefetch,
        amqpUrl: CONFIG.amqpUrl,
        newPrefix,
        config: CONFIG.latency,
      });
    }
    const counts = await workers.counts();
    meta.clientCounters = counts;
    const strays = Object.values(counts).reduce((sum, c) => sum + c.stray + c.foreign, 0);
    if (strays)
      S.log(
        `warning: clients saw ${strays} frames that belonged to no round: ${JSON.stringify(counts)}`,
      );
    meta.gatewayPeakRssKiB = S.vmKiB(gateway.pid, 'VmHWM');
    if (wanted('replay') || wanted('storm')) {
      // Alone on the machine: the main gateway would read (and drop) every event too. Its
      // clients hang up first: a stopping gateway closes theirs, which the workers count as failures.
      await workers.closeAll();
      await S.stopChild(gateway);
    }
    if (wanted('replay')) {
      meta.replay = await runReplayRounds({
        crossbar,
        amqpUrl: CONFIG.amqpUrl,
        connection,
        publisher,
        rounds: CONFIG.rounds,
        n: CONFIG.replayN,
      });
    }
    if (wanted('storm')) {
      meta.storm = await runStormRound({
        crossbar,
        amqpUrl: CONFIG.amqpUrl,
        connection,
        publisher,
        workers,
        config: CONFIG.storm,
      });
    }
  } finally {
    await S.stopAll();
    await connection.close().catch(() => {});
    await crossbar.stop().catch(() => {});
  }

  meta.elapsedMs = Math.round(performance.now() - started);
  report(meta, scenarios, memory, isolation, latency);
  if (meta.replay) process.stdout.write(`${replayReport(meta.replay)}\n`);
  if (meta.storm) process.stdout.write(`${stormReport(meta.storm)}\n`);
  if (profiles.length) {
    const { summarize } = require('./lib/profile-summary');
    for (const file of profiles) process.stdout.write(`\n${summarize(file)}\n`);
  }
  for (const { what, idleSnapshot, loadedSnapshot } of heapSnapshots) {
    const { compare } = require('./lib/heap-summary');
    process.stdout.write(
      `\n${what}: ${compare(idleSnapshot, loadedSnapshot, CONFIG.memoryClients, 20)}\n`,
    );
  }
  fs.mkdirSync(path.dirname(OUTPUT), { recursive: true });
  fs.writeFileSync(
    OUTPUT,
    `${JSON.stringify({ meta, scenarios, memory, isolation, latency }, null, 2)}\n`,
  );
  return (isolation && !isolation.pass) ||
    (latency && !latency.isolation.pass) ||
    (meta.storm && meta.storm.failures.length > 0)
    ? 1
    : 0;
}

main().then(
  (code) => process.exit(code),
  (error) => {
    process.stderr.write(`bench failed: ${error && error.stack ? error.stack : error}\n`);
    process.exit(1);
  },
);
