'use strict';
/**
 * The reconnect-storm round of `npm run bench` (BENCH_ONLY=storm runs only it): replay reads are
 * limited per connection and per node, so a storm of resuming clients must not stall live
 * delivery. On one gateway with the replay log on (a stream of its own):
 *
 *   1. BENCH_STORM_CLIENTS socket.io clients (5,000; 1,000 quick) of BENCH_STORM_ACCOUNTS
 *      accounts (100), held by the client workers (bench/client-worker.js, resume groups), each
 *      see a marker of their account, so each has a position, and hang up.
 *   2. BENCH_STORM_MISSED events of each account (20) are published while they are away.
 *   3. A live probe, clients of an account of its own in a latency worker
 *      (bench/latency-worker.js), stays connected and gets BENCH_STORM_PROBE_RATE events/s
 *      (500) in half-second chunks, each stamped with its publish time: first for
 *      BENCH_STORM_QUIET_S seconds (3; 2 quick) before the storm, then all through it.
 *   4. Every client comes back and resumes at once; a `replay_busy` answer is asked again after
 *      a short backoff. The storm runs from the first `resume` to the last ack. Then a last
 *      marker of every account: once each client has its own, each must have had exactly its
 *      account's missed events (none missing, no duplicate, nothing of another account).
 *
 * Read from the gateway's /metrics around the storm: resumes by outcome, entries the node read
 * from the log, events replayed, the event loop's lag (prom-client resets its max at each
 * scrape, so the reading after the storm is the storm's max). The whole round has a deadline
 * (BENCH_STORM_TIMEOUT_S, 240); past it the round reports how far the storm got and fails.
 *
 * The stream is named after this process (`blackhole.replay.storm-<pid>-<random>`) and deleted
 * at the end, also when the bench exits early; streams of that prefix whose process is gone
 * (a bench killed outright) are deleted at the start.
 */
const { execFileSync } = require('node:child_process');
const { randomBytes } = require('node:crypto');
const { performance } = require('node:perf_hooks');

const S = require('./lib/support');
const scale = require('./lib/scale');
const { buildMessages, publishAll } = require('./lib/messages');
const { startReplayGateway } = require('./replay-rounds');

const CALL_EXCHANGE = 'callevt';
const BINDING = 'call.CHANNEL_CREATE.*';
const GROUP = 'storm';
const PROBE_GROUP = 'storm-probe';
const PROBE_CLIENTS = 2;
const PROBE_CHUNK_MS = 500;
const PROBE_TICK_MS = 10;
const RETRY_BACKOFF_MS = 100;
const STREAM_PREFIX = 'blackhole.replay.storm-';
const OWN_STREAM = /^blackhole\.replay\.storm-(\d+)-[0-9a-f]+(\.epoch)?$/;

// ---------------------------------------------------------------------------------------------
// The stream: never left behind.

function rabbitmqctl(args) {
  return execFileSync('rabbitmqctl', ['-q', ...args], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'ignore'],
    timeout: 30000,
  });
}

function processAlive(pid) {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return error.code === 'EPERM';
  }
}

/**
 * Deletes storm streams whose bench process is gone. Needs the local broker's rabbitmqctl (AMQP
 * cannot list queues); without it there is nothing to sweep with, and the exit hook below is
 * what keeps streams from being left.
 */
function sweepLeftoverStreams() {
  let listing;
  try {
    listing = rabbitmqctl(['list_queues', 'name']);
  } catch {
    return [];
  }
  const deleted = [];
  for (const name of listing.split('\n').map((line) => line.trim())) {
    const match = OWN_STREAM.exec(name);
    if (!match || processAlive(Number(match[1]))) continue;
    try {
      rabbitmqctl(['delete_queue', name]);
      deleted.push(name);
    } catch {
      // gone meanwhile
    }
  }
  return deleted;
}

/** Deletes the stream and its epoch companion over AMQP; true when both are gone. */
async function deleteStream(connection, stream) {
  const channel = await connection.createChannel().catch(() => undefined);
  if (!channel) return false;
  try {
    await channel.deleteQueue(stream);
    await channel.deleteQueue(`${stream}.epoch`);
    return true;
  } catch {
    return false;
  } finally {
    await channel.close().catch(() => {});
  }
}

// ---------------------------------------------------------------------------------------------
// Readings.

/** The samples of a Prometheus text exposition: `name{labels}` → value. */
function parseMetrics(text) {
  const samples = new Map();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const space = line.lastIndexOf(' ');
    samples.set(line.slice(0, space), Number(line.slice(space + 1)));
  }
  return samples;
}

function scrape(url) {
  return new Promise((resolve, reject) => {
    require('node:http')
      .get(`${url}/metrics`, { timeout: 10000 }, (response) => {
        let body = '';
        response.setEncoding('utf8');
        response.on('data', (chunk) => (body += chunk));
        response.on('end', () =>
          response.statusCode === 200
            ? resolve(parseMetrics(body))
            : reject(new Error(`GET /metrics answered ${response.statusCode}`)),
        );
      })
      .on('timeout', function () {
        this.destroy(new Error('GET /metrics timed out'));
      })
      .on('error', reject);
  });
}

/** The replay counters and the event loop's lag of a scrape. */
function replayReading(samples) {
  const get = (key) => samples.get(key) ?? NaN;
  return {
    recovered: get('blackhole_replays_total{outcome="recovered"}'),
    notRecovered: get('blackhole_replays_total{outcome="not_recovered"}'),
    refused: get('blackhole_replays_total{outcome="refused"}'),
    replayedEvents: get('blackhole_replayed_events_total'),
    readEntries: get('blackhole_replay_read_entries_total'),
    memoryEntries: get('blackhole_replay_memory_entries_total'),
    loopLagMaxMs: get('nodejs_eventloop_lag_max_seconds') * 1000,
    loopLagP99Ms: get('nodejs_eventloop_lag_p99_seconds') * 1000,
  };
}

const delta = (after, before, key) => after[key] - before[key];

// ---------------------------------------------------------------------------------------------
// The live probe.

/**
 * Paced events of the probe's account in chunks of PROBE_CHUNK_MS, until `stop()` is true after
 * a chunk (at least one chunk). Each chunk: [startedAt, endedAt] on the epoch clock, latencies.
 */
async function probeChunks(ctx, stop) {
  const perChunk = Math.max(1, Math.round((ctx.rate * PROBE_CHUNK_MS) / 1000));
  const chunks = [];
  do {
    const prefix = ctx.newPrefix('p');
    const { done } = await ctx.probe.expect(PROBE_GROUP, prefix, perChunk);
    const startedAt = performance.timeOrigin + performance.now();
    await scale.publishPaced(
      ctx.publisher,
      CALL_EXCHANGE,
      [ctx.probeAccount],
      prefix,
      perChunk,
      ctx.rate,
      PROBE_TICK_MS,
    );
    await S.deadline(done, ctx.remainingMs(), `the live probe's ${perChunk} events of ${prefix}`);
    const endedAt = performance.timeOrigin + performance.now();
    const got = await ctx.probe.collect(PROBE_GROUP);
    chunks.push({ startedAt, endedAt, latencies: got.latencies, foreign: got.foreign });
  } while (!stop());
  return chunks;
}

function latencyOf(chunks) {
  const all = chunks.flatMap((chunk) => chunk.latencies);
  const { deliveries, p50, p99, max } = scale.summarize(all);
  return { deliveries, p50, p99, max, chunks: chunks.length };
}

// ---------------------------------------------------------------------------------------------
// The round.

/**
 * Runs the storm round; `workers` are the bench's client workers (bench/throughput.js
 * `Workers`), `config` {clients, accounts, missed, probeRate, quietS, timeoutS}. Returns the JSON
 * of the report; `failures` lists what broke the checks (empty when it passed).
 */
async function runStormRound({ crossbar, amqpUrl, connection, publisher, workers, config }) {
  const startedAt = performance.now();
  const deadlineAt = startedAt + config.timeoutS * 1000;
  const remainingMs = () => Math.max(1, deadlineAt - performance.now());
  const swept = sweepLeftoverStreams();
  if (swept.length) S.log(`  deleted storm streams left by a bench that is gone: ${swept}`);
  const stream = `${STREAM_PREFIX}${process.pid}-${randomBytes(4).toString('hex')}`;
  let streamDeleted = false;
  // A watchdog's process.exit() skips every finally: the stream goes with the process anyway.
  const onExit = () => {
    if (streamDeleted) return;
    for (const name of [stream, `${stream}.epoch`]) {
      try {
        rabbitmqctl(['delete_queue', name]);
      } catch {
        // not there, or no rabbitmqctl here
      }
    }
  };
  process.on('exit', onExit);

  const runId = randomBytes(3).toString('hex');
  let prefixCounter = 0;
  const newPrefix = (tag) => `storm${runId}${tag}${++prefixCounter}n`;
  const accounts = Array.from({ length: config.accounts }, () => crossbar.addAccount());
  const probeAccount = crossbar.addAccount();
  const subscription = (accountId) => ({
    auth_token: crossbar.issueToken(accountId),
    account_id: accountId,
    binding: BINDING,
  });
  S.log(
    `- reconnect storm: ${S.fmt(config.clients)} socket.io clients of ${config.accounts} accounts resume at once after ${config.missed} events of each account; a live probe at ${config.probeRate} events/s`,
  );

  const gateway = await startReplayGateway('gateway, reconnect storm', crossbar.url, amqpUrl, {
    REPLAY_WINDOW_S: '120',
    REPLAY_STREAM: stream,
    ...S.UNCAPPED_GATEWAY_ENV,
    CROSSBAR_MAX_QUEUED: '1000000',
  });
  const probe = new scale.LatencyWorkers(1);
  const ctx = { probe, publisher, probeAccount, rate: config.probeRate, newPrefix, remainingMs };
  /** `count` call events of every storm account, named by `prefix`. */
  const publishToEveryAccount = (prefix, count) =>
    publishAll(
      publisher,
      CALL_EXCHANGE,
      accounts.flatMap((accountId) => buildMessages(accountId, prefix, count)),
      { deadline: S.deadline, timeoutMs: remainingMs() },
    );
  /** One marker event per account, and every storm client sees its own. */
  const markEveryClient = async (tag, what) => {
    const prefix = newPrefix(tag);
    const { done } = await workers.expect(GROUP, prefix, 1);
    await publishToEveryAccount(prefix, 1);
    await S.deadline(done, remainingMs(), what);
  };
  const result = {
    ...config,
    stream,
    probeClients: PROBE_CLIENTS,
    probeChunkMs: PROBE_CHUNK_MS,
    retryBackoffMs: RETRY_BACKOFF_MS,
    failures: [],
  };
  let stormConnected = false;
  try {
    await probe.ready;
    await probe.connect(
      PROBE_GROUP,
      gateway.url,
      Array.from({ length: PROBE_CLIENTS }, () => ({
        accountId: probeAccount,
        subscribe: subscription(probeAccount),
      })),
    );
    // Client k goes to worker k mod workers and is of account k mod accounts.
    const clients = Array.from({ length: config.clients }, (_, k) => {
      const accountId = accounts[k % accounts.length];
      return { accountId, subscribe: subscription(accountId) };
    });
    const shares = workers.list.map((_, w) =>
      clients.filter((_, k) => k % workers.list.length === w),
    );
    stormConnected = true;
    await S.deadline(
      Promise.all(
        workers.list.map((worker, w) =>
          worker.request(
            { type: 'connect', group: GROUP, kind: 'sio', url: gateway.url, clients: shares[w] },
            remainingMs(),
            `storm clients to connect (worker ${w})`,
          ),
        ),
      ),
      remainingMs(),
      'the storm clients to connect',
    );
    workers.members.set(GROUP, workers.list);
    S.log(`  ${S.fmt(config.clients)} clients connected and subscribed`);

    // Quiet: the probe alone, before the clients leave.
    await scrape(gateway.url); // prom-client's lag max restarts at each scrape
    let quietLeft = Math.max(1, Math.round((config.quietS * 1000) / PROBE_CHUNK_MS));
    const quiet = await probeChunks(ctx, () => --quietLeft <= 0);
    const afterQuiet = replayReading(await scrape(gateway.url));
    result.quiet = { ...latencyOf(quiet), loopLagMaxMs: afterQuiet.loopLagMaxMs };

    // A position for everyone, then away.
    await markEveryClient('m', 'every storm client to see its marker');
    const left = await Promise.all(
      workers.list.map((worker) => worker.request({ type: 'leave', group: GROUP }, remainingMs())),
    );
    const withoutPosition = left.reduce((sum, reply) => sum + reply.withoutPosition, 0);
    if (withoutPosition > 0) throw new Error(`${withoutPosition} storm clients saw no position`);

    const missedPrefix = newPrefix('r');
    await publishToEveryAccount(missedPrefix, config.missed);
    // One probe chunk after them: once it is delivered, the node has read the missed events live.
    await probeChunks(ctx, () => true);
    S.log(`  clients away; ${S.fmt(config.accounts * config.missed)} events published meanwhile`);

    // The storm, with the probe going on all through it.
    const before = replayReading(await scrape(gateway.url));
    let stormOver = false;
    const probing = probeChunks(ctx, () => stormOver);
    probing.catch(() => {}); // awaited below; a failure meanwhile must not go unhandled
    let answers;
    try {
      answers = await S.deadline(
        Promise.all(
          workers.list.map((worker, w) =>
            worker.request(
              {
                type: 'resume',
                group: GROUP,
                url: gateway.url,
                prefix: missedPrefix,
                n: config.missed,
                backoffMs: RETRY_BACKOFF_MS,
              },
              remainingMs(),
              `worker ${w}'s storm clients to resume`,
            ),
          ),
        ),
        remainingMs(),
        'every storm client to resume',
      );
    } catch (error) {
      if (!/^timed out/.test(error.message)) throw error;
      const now = replayReading(await scrape(gateway.url).catch(() => new Map()));
      throw new Error(
        `reconnect storm not over within ${config.timeoutS} s (BENCH_STORM_TIMEOUT_S): ` +
          `${delta(now, before, 'recovered')} of ${config.clients} resumes answered, ` +
          `${delta(now, before, 'readEntries')} log entries read so far (${error.message})`,
      );
    } finally {
      stormOver = true;
    }
    const after = replayReading(await scrape(gateway.url));
    const probeChunksDuringStorm = await probing;
    const firstAskAt = Math.min(...answers.map((a) => a.firstAskAt));
    const lastAckAt = Math.max(...answers.map((a) => a.lastAckAt));
    const ackTimes = Float64Array.from(answers.flatMap((a) => a.ackAt)).sort();
    const sum = (key) => answers.reduce((total, a) => total + a[key], 0);
    const during = probeChunksDuringStorm.filter(
      (chunk) => chunk.startedAt <= lastAckAt && chunk.endedAt >= firstAskAt,
    );
    result.storm = {
      durationMs: lastAckAt - firstAskAt,
      ackMs: {
        p50: scale.quantile(ackTimes, 0.5) - firstAskAt,
        p99: scale.quantile(ackTimes, 0.99) - firstAskAt,
      },
      recovered: sum('recovered'),
      notRecovered: sum('notRecovered'),
      retries: sum('retries'),
      retriedClients: sum('retried'),
      maxRetries: Math.max(...answers.map((a) => a.maxRetries)),
      shortAtAck: sum('shortAtAck'),
      node: {
        recovered: delta(after, before, 'recovered'),
        notRecovered: delta(after, before, 'notRecovered'),
        refused: delta(after, before, 'refused'),
        replayedEvents: delta(after, before, 'replayedEvents'),
        readEntries: delta(after, before, 'readEntries'),
        memoryEntries: delta(after, before, 'memoryEntries'),
        loopLagMaxMs: after.loopLagMaxMs,
        loopLagP99Ms: after.loopLagP99Ms,
      },
    };
    result.probe = { quiet: result.quiet, storm: latencyOf(during) };
    result.probe.storm.loopLagMaxMs = after.loopLagMaxMs;
    result.probe.p50Ratio = result.probe.storm.p50 / result.probe.quiet.p50;
    result.probe.p99Ratio = result.probe.storm.p99 / result.probe.quiet.p99;
    delete result.quiet;
    S.log(
      `  storm: ${S.fmt(result.storm.durationMs)} ms, ${result.storm.recovered} recovered, ${result.storm.retries} retries after replay_busy, ${S.fmt(result.storm.node.readEntries)} log entries read`,
    );

    // Each client's own later marker: once it has it, its count of missed events is final.
    await markEveryClient('e', 'every storm client to see its last marker');
    const tallies = await Promise.all(
      workers.list.map((worker) =>
        worker.request({ type: 'tally', group: GROUP, prefix: missedPrefix }, remainingMs()),
      ),
    );
    const tallied = (key) => tallies.reduce((total, t) => total + t[key], 0);
    const probeForeign = [...quiet, ...probeChunksDuringStorm].reduce((n, c) => n + c.foreign, 0);
    result.replayed = {
      expected: config.clients * config.missed,
      delivered: config.clients * config.missed - tallied('missing') + tallied('extra'),
      exactClients: tallied('exact'),
      shortClients: tallied('short'),
      missing: tallied('missing'),
      overClients: tallied('over'),
      extra: tallied('extra'),
      foreign: tallied('foreign') + probeForeign,
    };
    const { storm, replayed } = result;
    if (storm.recovered !== config.clients)
      result.failures.push(`${config.clients - storm.recovered} resumes not recovered`);
    if (replayed.exactClients !== config.clients)
      result.failures.push(
        `${replayed.shortClients} clients missed ${replayed.missing} events, ${replayed.overClients} got ${replayed.extra} extra`,
      );
    if (replayed.foreign > 0)
      result.failures.push(`${replayed.foreign} frames reached a client of another account`);
    if (storm.node.refused !== storm.retries)
      result.failures.push(
        `the node counted ${storm.node.refused} refusals, the clients ${storm.retries}`,
      );
  } finally {
    if (stormConnected) {
      await Promise.all(
        workers.list.map((worker) => worker.request({ type: 'close', group: GROUP }, 60000)),
      ).catch(() => {});
      workers.members.delete(GROUP);
    }
    await probe.close(PROBE_GROUP).catch(() => {});
    for (const worker of probe.list) await S.stopChild(worker).catch(() => {});
    await S.stopChild(gateway).catch(() => {});
    streamDeleted = await deleteStream(connection, stream);
    if (streamDeleted) process.off('exit', onExit);
  }
  result.elapsedMs = Math.round(performance.now() - startedAt);
  return result;
}

/** The storm round's lines of the report. */
function stormReport(r) {
  const ms = (v) => `${v.toFixed(2)} ms`;
  const { storm, probe, replayed } = r;
  return [
    '',
    `Reconnect storm (${S.fmt(r.clients)} socket.io clients of ${r.accounts} accounts resume at once on one gateway, ${r.missed} missed events per account; ` +
      `live probe: ${r.probeRate} events/s to ${r.probeClients} clients of another account):`,
    `  storm, first resume to last ack            ${S.fmt(storm.durationMs)} ms  (acks p50 ${S.fmt(storm.ackMs.p50)} ms, p99 ${S.fmt(storm.ackMs.p99)} ms after the first resume)`,
    `  resumes recovered / refused (replay_busy)  ${S.fmt(storm.recovered)} / ${S.fmt(storm.node.refused)}  (${S.fmt(storm.retries)} retries by ${S.fmt(storm.retriedClients)} clients, at most ${storm.maxRetries} by one)`,
    `  replayed events delivered / expected       ${S.fmt(replayed.delivered)} / ${S.fmt(replayed.expected)}  (node: ${S.fmt(storm.node.replayedEvents)}; missing ${replayed.missing}, extra ${replayed.extra}, foreign ${replayed.foreign})`,
    `  log entries the node read                  ${S.fmt(storm.node.readEntries)}  (${S.fmt(storm.node.readEntries / Math.max(1, storm.recovered))} per resume; ${S.fmt(storm.node.memoryEntries)} of them from memory, the rest from the broker)`,
    `  live probe, quiet                          p50 ${ms(probe.quiet.p50)}, p99 ${ms(probe.quiet.p99)}, max ${ms(probe.quiet.max)} over ${S.fmt(probe.quiet.deliveries)} deliveries; event-loop lag max ${ms(probe.quiet.loopLagMaxMs)}`,
    `  live probe, during the storm               p50 ${ms(probe.storm.p50)}, p99 ${ms(probe.storm.p99)}, max ${ms(probe.storm.max)} over ${S.fmt(probe.storm.deliveries)} deliveries; event-loop lag max ${ms(probe.storm.loopLagMaxMs)}`,
    `  storm / quiet                              p50 ${probe.p50Ratio.toFixed(2)}, p99 ${probe.p99Ratio.toFixed(2)}`,
    `  Storm checks: ${r.failures.length === 0 ? 'PASS' : `FAIL (${r.failures.join('; ')})`}`,
  ].join('\n');
}

module.exports = { runStormRound, stormReport };
