'use strict';
/**
 * The scale figures of `npm run bench`:
 *
 *   - the open-file limit: tens of thousands of connections on one node need as many
 *     descriptors in the server and, spread, in the client workers; `raiseFdLimit` lifts this
 *     process's limit once, before any child starts, and the children inherit it.
 *   - publish-to-socket latency under a steady load: `measureLatency` connects clients of many
 *     accounts (each subscribed to its own account's `call.CHANNEL_CREATE.*`) to the gateway and
 *     to a bare socket.io server fed by a plain amqplib consumer (bench/raw-socketio-amqp-server.js),
 *     publishes a paced stream of events spread evenly over the accounts, each stamped with its
 *     publish time, and reads every delivery's receive − publish time in the clients
 *     (bench/latency-worker.js). Rounds of the two are interleaved; percentiles are over all
 *     deliveries of the measured rounds. Every client must get exactly its own account's events.
 */
const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { performance } = require('node:perf_hooks');

const S = require('./support');
const { callEvent } = require('./messages');

/** This process's open-file limits, from /proc. */
function fdLimits() {
  const line = /^Max open files\s+(\d+|unlimited)\s+(\d+|unlimited)/m.exec(
    fs.readFileSync('/proc/self/limits', 'utf8'),
  );
  const value = (text) => (text === 'unlimited' ? Infinity : Number(text));
  return { soft: value(line[1]), hard: value(line[2]) };
}

/**
 * Lifts this process's open-file limit to `wanted` (children spawned afterwards inherit it):
 * both limits when allowed to raise the hard one (root, or CAP_SYS_RESOURCE), else the soft one
 * up to the hard one. Node offers no setrlimit; util-linux's `prlimit` does it from outside.
 * Returns the soft limit in force.
 */
function raiseFdLimit(wanted) {
  const before = fdLimits();
  if (before.soft >= wanted) return before.soft;
  const attempt = (soft, hard) => {
    try {
      execFileSync('prlimit', ['--pid', String(process.pid), `--nofile=${soft}:${hard}`], {
        stdio: 'ignore',
      });
      return true;
    } catch {
      return false;
    }
  };
  if (!attempt(wanted, Math.max(wanted, before.hard)) && before.hard > before.soft) {
    attempt(Math.min(wanted, before.hard), before.hard);
  }
  return fdLimits().soft;
}

/** Value at quantile `q` of sorted `values` (nearest rank). */
function quantile(sorted, q) {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))];
}

function summarize(latencies) {
  const sorted = Float64Array.from(latencies).sort();
  return {
    deliveries: sorted.length,
    p50: quantile(sorted, 0.5),
    p99: quantile(sorted, 0.99),
    p999: quantile(sorted, 0.999),
    max: sorted.length ? sorted[sorted.length - 1] : NaN,
  };
}

/** The latency clients: `workers` processes of bench/latency-worker.js. */
class LatencyWorkers {
  constructor(count) {
    const script = path.join(__dirname, '..', 'latency-worker.js');
    this.list = Array.from({ length: count }, (_, i) =>
      S.startNode(`latency worker ${i}`, [script], { cwd: path.join(__dirname, '..', '..') }),
    );
    this.waiting = new Map();
    for (const worker of this.list) {
      worker.child.on('message', (message) => {
        if (message && message.type === 'done') {
          const wait = this.waiting.get(`${message.group}\u0000${message.prefix}`);
          if (wait && --wait.left === 0) wait.resolve(performance.now());
        }
      });
    }
    this.ready = Promise.all(this.list.map((worker) => S.firstMessage(worker, 'ready')));
  }

  /** Client k goes to worker k mod workers, so every worker holds clients of every account. */
  async connect(group, url, clients) {
    await Promise.all(
      this.list.map((worker, w) =>
        worker.request(
          {
            type: 'connect',
            group,
            url,
            clients: clients.filter((_, k) => k % this.list.length === w),
          },
          120000,
          `latency clients of ${group} to connect (worker ${w})`,
        ),
      ),
    );
  }

  async expect(group, prefix, n) {
    const done = new Promise((resolve) =>
      this.waiting.set(`${group}\u0000${prefix}`, { left: this.list.length, resolve }),
    );
    await Promise.all(this.list.map((w) => w.request({ type: 'expect', group, prefix, n })));
    return { done };
  }

  async close(group) {
    await Promise.all(this.list.map((w) => w.request({ type: 'close', group }, 60000)));
  }

  async collect(group) {
    const out = { latencies: [], foreign: 0, stray: 0 };
    for (const worker of this.list) {
      const reply = await worker.request({ type: 'latencies', group }, 60000);
      for (const ms of reply.latencies) out.latencies.push(ms);
      out.foreign += reply.foreign;
      out.stray += reply.stray;
    }
    return out;
  }
}

/**
 * Publishes `perAccount` events to each of `accounts` at `rate` events/s: every `tickMs` the
 * events due by then (on a fixed schedule from the start, so a late timer catches up rather than
 * drifting), round-robin over the accounts. Each body is the fixture's CHANNEL_CREATE with the
 * publish time in `Bench-Published-At`. Resolves with the achieved rate once confirmed.
 */
async function publishPaced(channel, exchange, accounts, prefix, perAccount, rate, tickMs) {
  // The body around the time stamp is serialized once per account, not per event.
  const templates = accounts.map((accountId) => {
    const json = JSON.stringify({
      ...callEvent(accountId, `${prefix}@ID@`),
      'Bench-Published-At': 0,
    });
    const [head, tail] = json.split('"Bench-Published-At":0');
    return { head: head + '"Bench-Published-At":', tail };
  });
  const total = perAccount * accounts.length;
  const perTick = (rate * tickMs) / 1000;
  let sent = 0;
  const t0 = performance.now();
  await new Promise((resolve) => {
    const tick = () => {
      const elapsed = performance.now() - t0;
      const due = Math.min(total, Math.round((Math.floor(elapsed / tickMs) + 1) * perTick));
      for (; sent < due; sent++) {
        const { head, tail } = templates[sent % accounts.length];
        const id = `${prefix}${sent}`;
        const stamp = (performance.timeOrigin + performance.now()).toFixed(3);
        channel.publish(
          exchange,
          `call.CHANNEL_CREATE.${id}`,
          Buffer.from(head.replaceAll(`${prefix}@ID@`, id) + stamp + tail),
          { contentType: 'application/json' },
        );
      }
      if (sent >= total) resolve();
      else setTimeout(tick, tickMs - ((performance.now() - t0) % tickMs));
    };
    tick();
  });
  const elapsedMs = performance.now() - t0;
  await S.deadline(channel.waitForConfirms(), 60000, 'publisher confirms');
  return { published: total, rate: Math.round((total * 1000) / Math.max(elapsedMs, 1)) };
}

/**
 * The latency round. `ctx`: {gatewayUrl, crossbar, publisher (a confirm channel), gatewayExchange,
 * rawExchange, binding, prefetch, amqpUrl, newPrefix, config: {accounts, socketsPerAccount, rate,
 * seconds, rounds, workers}}. Returns the JSON the report and bench.json take.
 */
async function measureLatency(ctx) {
  const { config } = ctx;
  const accounts = Array.from({ length: config.accounts }, () => ctx.crossbar.addAccount());
  const clientsOf = (withToken) =>
    Array.from({ length: config.accounts * config.socketsPerAccount }, (_, k) => {
      const accountId = accounts[k % accounts.length];
      return {
        accountId,
        subscribe: withToken
          ? {
              auth_token: ctx.crossbar.issueToken(accountId),
              account_id: accountId,
              binding: ctx.binding,
            }
          : { account_id: accountId, binding: ctx.binding },
      };
    });

  const workers = new LatencyWorkers(config.workers);
  const raw = S.startNode(
    'bare socket.io server with an amqplib consumer',
    [path.join(__dirname, '..', 'raw-socketio-amqp-server.js')],
    {
      cwd: path.join(__dirname, '..', '..'),
      env: {
        ...process.env,
        AMQP_URL: ctx.amqpUrl,
        BENCH_EXCHANGE: ctx.rawExchange,
        BENCH_BINDING: ctx.binding,
        BENCH_PREFETCH: String(ctx.prefetch),
      },
    },
  );
  const [{ port }] = await Promise.all([S.firstMessage(raw, 'listening'), workers.ready]);
  const rawUrl = `http://127.0.0.1:${port}`;
  const sockets = config.accounts * config.socketsPerAccount;
  S.log(
    `- latency: ${sockets} socket.io clients (${config.socketsPerAccount} per account, ${config.accounts} accounts) on the gateway and on a bare socket.io server fed by amqplib`,
  );
  await workers.connect('gw-latency', ctx.gatewayUrl, clientsOf(true));
  await workers.connect('raw-latency', rawUrl, clientsOf(false));

  const sides = {
    gateway: {
      group: 'gw-latency',
      exchange: ctx.gatewayExchange,
      pid: ctx.gatewayPid,
      runs: [],
      latencies: [],
    },
    raw: { group: 'raw-latency', exchange: ctx.rawExchange, pid: raw.pid, runs: [], latencies: [] },
  };
  const tickMs = 10;
  const run = async (side, seconds, measured) => {
    const perAccount = Math.max(1, Math.round((config.rate * seconds) / config.accounts));
    const prefix = ctx.newPrefix('l');
    const { done } = await workers.expect(side.group, prefix, perAccount);
    const cpuBefore = S.cpuSeconds(side.pid);
    const published = await publishPaced(
      ctx.publisher,
      side.exchange,
      accounts,
      prefix,
      perAccount,
      config.rate,
      tickMs,
    );
    await S.deadline(
      done,
      60000,
      `${side.group} clients to receive their ${perAccount} events each`,
    );
    const serverCpuS = S.cpuSeconds(side.pid) - cpuBefore;
    const got = await workers.collect(side.group);
    if (!measured) return;
    for (const ms of got.latencies) side.latencies.push(ms);
    side.runs.push({
      ...published,
      ...summarize(got.latencies),
      expected: perAccount * sockets,
      serverCpuS: S.round(serverCpuS, 2),
    });
    side.foreign = got.foreign;
    side.stray = got.stray;
    const last = side.runs[side.runs.length - 1];
    S.log(
      `  ${side.group}: ${S.fmt(last.deliveries)} deliveries at ${S.fmt(published.rate)} events/s, p50 ${last.p50.toFixed(2)} ms, p99 ${last.p99.toFixed(2)} ms, server CPU ${last.serverCpuS} s`,
    );
  };
  // Latency is what a shared machine's load shows first: the reading goes with the result.
  const loadAtStart = os.loadavg()[0];
  const order = [sides.raw, sides.gateway];
  for (const side of order) await run(side, 1, false); // warm-up
  const seconds = config.seconds / config.rounds;
  for (let r = 0; r < config.rounds; r++) {
    for (const side of r % 2 === 0 ? order : [...order].reverse()) await run(side, seconds, true);
  }
  await workers.close('gw-latency');
  await workers.close('raw-latency');
  await S.stopChild(raw);
  for (const worker of workers.list) await S.stopChild(worker);

  const result = { ...config, tickMs, loadAverage: [loadAtStart, os.loadavg()[0]] };
  for (const [name, side] of Object.entries(sides)) {
    const expected = side.runs.reduce((sum, r) => sum + r.expected, 0);
    result[name] = {
      ...summarize(side.latencies),
      expected,
      foreign: side.foreign,
      stray: side.stray,
      publishedRate: Math.min(...side.runs.map((r) => r.rate)),
      rounds: side.runs,
    };
  }
  result.isolation = {
    pass:
      result.gateway.foreign === 0 &&
      result.raw.foreign === 0 &&
      result.gateway.deliveries === result.gateway.expected &&
      result.raw.deliveries === result.raw.expected,
  };
  return result;
}

/** Lines of the latency result for the report, after the table. */
function latencyLines(latency) {
  const ms = (v) => `${v.toFixed(2)} ms`;
  const side = (name, x) =>
    `  ${name}: p50 ${ms(x.p50)}, p99 ${ms(x.p99)}, p99.9 ${ms(x.p999)}, max ${ms(x.max)} over ${S.fmt(x.deliveries)} deliveries ` +
    `(expected ${S.fmt(x.expected)}; published at >= ${S.fmt(x.publishedRate)} events/s)`;
  return [
    '',
    `Latency, publish to socket (${S.fmt(latency.rate)} events/s for ${latency.seconds} s in ${latency.rounds} rounds, spread over ${latency.accounts} accounts ` +
      `with ${latency.socketsPerAccount} socket.io clients each, published every ${latency.tickMs} ms; clock read by publisher and client on this machine; 1-minute load average ${latency.loadAverage.map((l) => l.toFixed(2)).join(' → ')}):`,
    side('gateway', latency.gateway),
    side('bare socket.io + amqplib, rooms per account', latency.raw),
    `  Isolation: ${latency.isolation.pass ? 'PASS' : 'FAIL'} (${latency.gateway.foreign} + ${latency.raw.foreign} frames reached a client of another account; ` +
      `every client got exactly its account's events: ${latency.gateway.deliveries === latency.gateway.expected && latency.raw.deliveries === latency.raw.expected ? 'yes' : 'no'})`,
  ];
}

module.exports = {
  fdLimits,
  raiseFdLimit,
  measureLatency,
  latencyLines,
  summarize,
  quantile,
  LatencyWorkers,
  publishPaced,
};
