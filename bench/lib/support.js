'use strict';
/**
 * What every part of `npm run bench` shares: child processes (each in its own process group,
 * killed group-wide on every way out), deadlines, IPC requests, ports and /proc readings.
 */
const { spawn } = require('node:child_process');
const fs = require('node:fs');
const net = require('node:net');
const http = require('node:http');

const STEP_TIMEOUT_MS = 20000;
const CLK_TCK = 100; // Linux USER_HZ: /proc/<pid>/stat counts CPU time in these ticks

// ---------------------------------------------------------------------------------------------
// Waiting: every wait has a deadline and says what it was waiting for.

/**
 * Rejects as soon as something the measurements depend on breaks (a child process dies, a
 * client is disconnected): every wait races with it, so a failure surfaces at once instead of
 * at a timeout.
 */
let abortRun;
const aborted = new Promise((_, reject) => (abortRun = reject));
aborted.catch(() => {}); // observed through the races below

function deadline(promise, ms, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  return Promise.race([promise, timeout, aborted]).finally(() => clearTimeout(timer));
}

/** Polls `probe` until it returns a truthy value; only for state outside this process. */
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

// ---------------------------------------------------------------------------------------------
// Child processes.

const children = new Map(); // pid → entry

/**
 * Starts `node <args>` in a process group of its own with an IPC channel, and keeps its last
 * output for error messages. `request(message)` sends a message with a fresh `seq` and resolves
 * with the child's reply carrying the same `seq`.
 */
function startNode(name, args, { env, cwd } = {}) {
  const child = spawn(process.execPath, args, {
    cwd,
    env: env || process.env,
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
  });
  const entry = { name, child, pid: child.pid, output: '', stopping: false, exited: undefined };
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
  child.stdout.on('data', keep);
  child.stderr.on('data', keep);
  // A child that reports a failure on its own aborts the run.
  child.on('message', (message) => {
    if (message && message.type === 'failed') {
      abortRun(new Error(`${name}: ${message.message}`));
    }
  });
  let seq = 0;
  entry.request = (message, ms = STEP_TIMEOUT_MS, what = `${name} to answer ${message.type}`) => {
    const id = ++seq;
    const reply = new Promise((resolve) => {
      const onMessage = (answer) => {
        if (answer && answer.seq === id) {
          child.off('message', onMessage);
          resolve(answer);
        }
      };
      child.on('message', onMessage);
    });
    child.send({ ...message, seq: id });
    return deadline(reply, ms, what);
  };
  entry.send = (message) => child.send(message);
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
  if (!children.has(entry.pid)) return;
  killGroup(entry.pid, 'SIGCONT'); // a stopped process does not act on SIGTERM
  killGroup(entry.pid, 'SIGTERM');
  try {
    await deadline(entry.exited, 5000, `${entry.name} to exit after SIGTERM`);
  } catch {
    killGroup(entry.pid, 'SIGKILL');
    await Promise.race([entry.exited, new Promise((r) => setTimeout(r, 5000))]);
  }
}

async function stopAll() {
  await Promise.all([...children.values()].map((entry) => stopChild(entry)));
}

process.on('exit', () => {
  for (const pid of children.keys()) {
    killGroup(pid, 'SIGCONT');
    killGroup(pid, 'SIGKILL');
  }
});
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(signal, () => {
    process.stderr.write(`\nbench: ${signal} received, stopping child processes\n`);
    process.exit(130);
  });
}

/** Waits for a child's first `{type}` message (e.g. 'listening'). */
function firstMessage(entry, type, ms = STEP_TIMEOUT_MS) {
  return deadline(
    new Promise((resolve) => {
      const onMessage = (message) => {
        if (message && message.type === type) {
          entry.child.off('message', onMessage);
          resolve(message);
        }
      };
      entry.child.on('message', onMessage);
    }),
    ms,
    `${entry.name} to say ${type}`,
  );
}

// ---------------------------------------------------------------------------------------------
// Ports, HTTP, /proc.

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

/** A `Vm*` line of /proc/<pid>/status (VmRSS, VmHWM), in KiB. */
function vmKiB(pid, field) {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const match = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status);
  return match ? Number(match[1]) : undefined;
}

/**
 * RSS of a server process once it has settled after full GCs: asks its server-probe (loaded
 * with `-r`) to collect, then reads /proc from here. V8 gives memory back lazily: the young
 * generation stays at its grown size (up to ~16 MiB on Node 20) until its memory reducer runs,
 * seconds later, and freed pages leave RSS later still. So this polls until the new space is
 * back to at most 1 MiB and RSS moved by less than `toleranceKiB` between two readings.
 *
 * With tens of thousands of connections, their pings keep the young generation at its full
 * size (32 MiB here) however long one waits: `grownNewSpace` then accepts a new space that kept
 * its size between two readings. Either way `heldKiB` is RSS less the new space, which is empty
 * after the GC and sized by V8 per process, not per connection.
 */
async function settledRssKiB(
  entry,
  { gapMs = 400, maxReadings = 20, toleranceKiB = 256, grownNewSpace = false } = {},
) {
  let previous;
  for (let i = 0; i < maxReadings; i++) {
    if (i > 0) await new Promise((resolve) => setTimeout(resolve, gapMs));
    const probe = await entry.request({ type: 'bench:gc' }, STEP_TIMEOUT_MS, `${entry.name} to GC`);
    const rssKiB = vmKiB(entry.pid, 'VmRSS');
    const reading = {
      rssKiB,
      heldKiB: rssKiB - probe.spaces.new_space,
      heapUsedKiB: Math.round(probe.heapUsed / 1024),
      // Buffers and other memory V8 objects hold outside the heap (sockets' read buffers…).
      externalKiB: Math.round(probe.memory.external / 1024),
      newSpaceKiB: probe.spaces.new_space,
      readings: i + 1,
    };
    const youngSettled =
      reading.newSpaceKiB <= 1024 ||
      (grownNewSpace && previous && reading.newSpaceKiB === previous.newSpaceKiB);
    if (previous && youngSettled && Math.abs(reading.heldKiB - previous.heldKiB) < toleranceKiB) {
      return reading;
    }
    previous = reading;
  }
  return { ...previous, unsettled: true };
}

/** The RabbitMQ node's OS process when the broker is local (for its CPU time), else undefined. */
function findBrokerPid(amqpUrl) {
  if (!/@(127\.0\.0\.1|localhost)(:|\/|$)/.test(amqpUrl)) return undefined;
  const pids = [];
  for (const name of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      if (fs.readFileSync(`/proc/${name}/comm`, 'utf8').trim() !== 'beam.smp') continue;
      if (fs.readFileSync(`/proc/${name}/cmdline`, 'utf8').includes('rabbit')) {
        pids.push(Number(name));
      }
    } catch {
      // gone, or not ours to read
    }
  }
  return pids.length === 1 ? pids[0] : undefined;
}

const median = (values) => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
};
const round = (value, digits) => Number(value.toFixed(digits));
const fmt = (value) => Math.round(value).toLocaleString('en-US');
const T0 = Date.now();
const log = (line) => process.stderr.write(`[${((Date.now() - T0) / 1000).toFixed(1)}s] ${line}\n`);

/**
 * Every bench client comes from 127.0.0.1 and some wait a while before subscribing: the
 * per-address and total caps, the deadline and the Crossbar budgets would measure themselves
 * instead of the gateway.
 */
const UNCAPPED_GATEWAY_ENV = {
  MAX_CONNECTIONS: '10000000',
  MAX_CONNECTIONS_PER_IP: '10000000',
  AUTH_DEADLINE_S: '86400',
  CROSSBAR_IP_LOOKUPS_BURST: '1000000',
  CROSSBAR_IP_LOOKUPS_PER_MIN: '1000000',
  CROSSBAR_LOOKUPS_BURST: '1000000',
  CROSSBAR_LOOKUPS_PER_MIN: '1000000',
};

module.exports = {
  STEP_TIMEOUT_MS,
  UNCAPPED_GATEWAY_ENV,
  aborted,
  abortRun: (error) => abortRun(error),
  deadline,
  pollUntil,
  startNode,
  stopChild,
  stopAll,
  firstMessage,
  freePort,
  getJson,
  cpuSeconds,
  vmKiB,
  settledRssKiB,
  findBrokerPid,
  median,
  round,
  fmt,
  log,
};
