'use strict';
/**
 * The replay log's rounds of `npm run bench` (BENCH_ONLY=replay runs only them):
 *
 *   1. Live delivery with the log on vs off: two gateways on the same broker, one with
 *      REPLAY_WINDOW_S=0 (per-node queues, on-demand bindings) and one with the log (live
 *      delivery reads the stream). Each round publishes BENCH_REPLAY_N call events of the
 *      watched account while both gateways are stopped (SIGSTOP), then resumes one and times
 *      until its one socket.io client has them all; the other drains after, untimed. Rounds
 *      alternate between the two.
 *   2. Replay speed: a client of the log gateway disconnects, BENCH_REPLAY_N events of its
 *      account are published, and it resumes with the position it last saw; events/s is
 *      BENCH_REPLAY_N over the time from `resume` to its ack (every replayed event arrives
 *      before the ack).
 *
 * The log is a stream of its own, deleted at the end.
 */
const { randomBytes } = require('node:crypto');
const path = require('node:path');
const { performance } = require('node:perf_hooks');
const { io } = require('socket.io-client');

const S = require('./lib/support');
const { buildMessages, publishAll } = require('./lib/messages');

const ROOT = path.resolve(__dirname, '..');
const CALL_EXCHANGE = 'callevt';
const ROUND_TIMEOUT_MS = 60000;

async function startReplayGateway(name, crossbarUrl, amqpUrl, env) {
  const port = await S.freePort();
  // BENCH_CPU_PROF_DIR: each replay gateway writes a V8 CPU profile there when it stops.
  const profileDir = process.env.BENCH_CPU_PROF_DIR;
  const profiling = profileDir ? ['--cpu-prof', `--cpu-prof-dir=${profileDir}`] : [];
  const entry = S.startNode(name, [...profiling, path.join(ROOT, 'dist', 'main.js')], {
    cwd: ROOT,
    env: {
      ...process.env,
      PORT: String(port),
      HOST: '127.0.0.1',
      CROSSBAR_URL: crossbarUrl,
      AMQP_URL: amqpUrl,
      LOG_LEVEL: 'warn',
      REQUEST_RATE_BURST: '1000000',
      // 10,000 events at once to one client: more than the default 1 MiB may wait unsent.
      MAX_OUTBOUND_BYTES: String(256 * 1024 * 1024),
      ...env,
    },
  });
  entry.url = `http://127.0.0.1:${port}`;
  await S.pollUntil(async () => (await S.getJson(`${entry.url}/health`, 1000)).status === 200, {
    timeoutMs: 30000,
    intervalMs: 100,
    what: `${name}'s GET /health to answer 200`,
  });
  return entry;
}

/** A socket.io client that counts CHANNEL_CREATE events by Call-ID prefix and keeps the last position. */
async function countingClient(url) {
  const socket = io(url, { transports: ['websocket'], forceNew: true, reconnection: false });
  await S.deadline(
    new Promise((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('connect_error', reject);
    }),
    10000,
    `a socket.io client to connect to ${url}`,
  );
  const client = {
    socket,
    count: 0,
    prefix: undefined,
    waiter: undefined,
    lastPosition: undefined,
  };
  socket.on('CHANNEL_CREATE', (payload, meta) => {
    if (meta && meta.position) client.lastPosition = meta.position;
    const callId = payload && payload['Call-ID'];
    if (client.prefix === undefined || typeof callId !== 'string') return;
    if (!callId.startsWith(client.prefix)) return;
    client.count++;
    if (client.waiter && client.count >= client.waiter.n) client.waiter.resolve(performance.now());
  });
  client.expect = (prefix, n) => {
    client.prefix = prefix;
    client.count = 0;
    return new Promise((resolve) => (client.waiter = { n, resolve }));
  };
  client.request = (event, body) =>
    S.deadline(
      new Promise((resolve) => socket.emit(event, body, resolve)),
      ROUND_TIMEOUT_MS,
      `the ack of ${event}`,
    );
  return client;
}

/**
 * Runs the replay rounds; returns `{ live: {off, on}, replay }` in events/s (medians) plus the
 * raw rounds. `log(line)` prints progress.
 */
async function runReplayRounds({ crossbar, amqpUrl, connection, publisher, rounds, n }) {
  const stream = `blackhole.replay.bench-${randomBytes(4).toString('hex')}`;
  const accountId = crossbar.addAccount();
  const token = crossbar.issueToken(accountId);
  const subscription = { auth_token: token, account_id: accountId, binding: 'call.*.*' };
  S.log(`- replay log: live delivery with the log off vs on, then replay (${n} events a round)`);
  const [off, on] = await Promise.all([
    startReplayGateway('gateway, replay log off', crossbar.url, amqpUrl, { REPLAY_WINDOW_S: '0' }),
    startReplayGateway('gateway, replay log on', crossbar.url, amqpUrl, {
      REPLAY_WINDOW_S: '120',
      REPLAY_STREAM: stream,
    }),
  ]);
  const gateways = { off, on };
  const clients = {
    off: await countingClient(off.url),
    on: await countingClient(on.url),
  };
  for (const client of Object.values(clients)) {
    const ack = await client.request('subscribe', subscription);
    if (!ack || ack.status !== 'success')
      throw new Error(`bench subscribe failed: ${JSON.stringify(ack)}`);
  }
  const results = { off: [], on: [], replay: [] };
  let prefixCounter = 0;
  try {
    for (let round = 0; round < rounds; round++) {
      for (const which of round % 2 === 0 ? ['off', 'on'] : ['on', 'off']) {
        const other = which === 'off' ? 'on' : 'off';
        const prefix = `rp${++prefixCounter}x`;
        const messages = buildMessages(accountId, prefix, n);
        const done = clients[which].expect(prefix, n);
        const drained = clients[other].expect(prefix, n);
        process.kill(gateways.off.pid, 'SIGSTOP');
        process.kill(gateways.on.pid, 'SIGSTOP');
        try {
          await publishAll(publisher, CALL_EXCHANGE, messages, {
            deadline: S.deadline,
            timeoutMs: ROUND_TIMEOUT_MS,
          });
        } finally {
          process.kill(gateways[which].pid, 'SIGCONT');
        }
        const t0 = performance.now();
        let last;
        try {
          last = await S.deadline(done, ROUND_TIMEOUT_MS, `the ${which} gateway to deliver ${n}`);
        } finally {
          process.kill(gateways[other].pid, 'SIGCONT');
        }
        results[which].push((n * 1000) / (last - t0));
        S.log(`  round ${round + 1}, log ${which}: ${Math.round(results[which].at(-1))} events/s`);
        await S.deadline(drained, ROUND_TIMEOUT_MS, `the ${other} gateway to drain`);
      }
    }

    for (let round = 0; round < rounds; round++) {
      const position = clients.on.lastPosition;
      clients.on.socket.close();
      const prefix = `rr${++prefixCounter}x`;
      const liveCopy = clients.off.expect(prefix, n);
      await publishAll(publisher, CALL_EXCHANGE, buildMessages(accountId, prefix, n), {
        deadline: S.deadline,
        timeoutMs: ROUND_TIMEOUT_MS,
      });
      // The off gateway's client sees them all: they are in the log too by then.
      await S.deadline(liveCopy, ROUND_TIMEOUT_MS, 'the live copy');
      clients.on = await countingClient(on.url);
      const replayed = clients.on.expect(prefix, n);
      const t0 = performance.now();
      const ack = await clients.on.request('resume', { ...subscription, position });
      const t1 = performance.now();
      if (!ack || ack.status !== 'success' || ack.data.recovered !== true) {
        throw new Error(`bench resume did not recover: ${JSON.stringify(ack)}`);
      }
      await S.deadline(replayed, 1000, 'the replayed events');
      results.replay.push((n * 1000) / (t1 - t0));
      S.log(`  replay ${round + 1}: ${Math.round(results.replay.at(-1))} events/s`);
    }
  } finally {
    for (const client of Object.values(clients)) client.socket.close();
    await S.stopChild(off).catch(() => {});
    await S.stopChild(on).catch(() => {});
    const channel = await connection.createChannel().catch(() => undefined);
    if (channel) {
      await channel.deleteQueue(stream).catch(() => {});
      await channel.deleteQueue(`${stream}.epoch`).catch(() => {});
      await channel.close().catch(() => {});
    }
  }
  const summary = {
    n,
    rounds,
    liveOff: S.median(results.off),
    liveOn: S.median(results.on),
    replay: S.median(results.replay),
    samples: results,
  };
  summary.liveRatio = summary.liveOn / summary.liveOff;
  return summary;
}

/** The replay rounds' lines of the report. */
function replayReport(summary) {
  const f = (value) => S.fmt(Math.round(value));
  return [
    '',
    `Replay log (${summary.n} events a round, ${summary.rounds} rounds, medians):`,
    `  live delivery, log off (per-node queues)   ${f(summary.liveOff)} events/s`,
    `  live delivery, log on (stream)             ${f(summary.liveOn)} events/s  (on/off ${summary.liveRatio.toFixed(2)})`,
    `  replay on resume                           ${f(summary.replay)} events/s`,
  ].join('\n');
}

module.exports = { runReplayRounds, replayReport, startReplayGateway };
