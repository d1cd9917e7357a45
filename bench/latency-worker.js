'use strict';
/**
 * Clients of the latency round (bench/lib/scale.js), in a process of their own like
 * bench/client-worker.js, but each client belongs to one of many accounts and reads one field
 * of every event: the publisher's clock reading (`Bench-Published-At`, ms since the epoch as
 * `performance.timeOrigin + performance.now()`, the same machine clock here). The latency is
 * that subtracted from this process's reading when the frame arrives. The rest of the frame is
 * only searched, never parsed, so gateway and baseline clients cost the same.
 *
 * Each event must reach every client of its account and no other: a frame without the client's
 * own account id is `foreign` (the isolation check), a client with more events of a run than
 * its account was sent fails the run.
 *
 *   parent → {type: 'connect', seq, group, url, clients: [{accountId, subscribe}]}
 *   parent → {type: 'expect', seq, group, prefix, n}  … child → {type: 'done', group, prefix}
 *            once every client of the group has n events of the prefix
 *   parent → {type: 'latencies', seq, group} → {latencies: number[] (ms), foreign, stray}
 *   parent → {type: 'close', seq, group}
 *   child  → {type: 'ready'} at start, {type: 'failed', message} when a client breaks
 */
const { performance } = require('node:perf_hooks');
const { WebSocket } = require('ws');

const CONNECT_CONCURRENCY = 50;
const STEP_TIMEOUT_MS = 20000;
const WS_OPTIONS = { perMessageDeflate: false, skipUTF8Validation: true };
const STAMP = Buffer.from('"Bench-Published-At":');

const groups = new Map();

function send(message) {
  if (process.connected) process.send(message);
}

function fail(message) {
  send({ type: 'failed', message });
}

/** The number right after `"Bench-Published-At":` in a frame, or NaN. */
function publishedAt(frame) {
  const at = frame.indexOf(STAMP);
  if (at === -1) return NaN;
  let end = at + STAMP.length;
  while (end < frame.length) {
    const c = frame[end];
    if ((c < 0x30 || c > 0x39) && c !== 0x2e /* . */) break;
    end++;
  }
  return Number(frame.toString('latin1', at + STAMP.length, end));
}

class Group {
  constructor(name) {
    this.name = name;
    this.clients = []; // {ws, account: Buffer, count}
    this.run = undefined;
    this.latencies = [];
    this.foreign = 0;
    this.stray = 0;
    this.closing = false;
  }

  onEvent(client, frame) {
    const receivedAt = performance.timeOrigin + performance.now();
    if (frame.indexOf(client.account) === -1) {
      this.foreign++;
      return;
    }
    const run = this.run;
    if (run === undefined || frame.indexOf(run.prefix) === -1) {
      this.stray++;
      return;
    }
    this.latencies.push(receivedAt - publishedAt(frame));
    const count = ++client.count;
    if (count === run.n) {
      if (++run.completed === this.clients.length) {
        send({ type: 'done', group: this.name, prefix: run.prefixText });
      }
    } else if (count > run.n) {
      fail(`${this.name}: a client got more than the ${run.n} events of its account`);
    }
  }
}

function withTimeout(promise, what) {
  let timer;
  return Promise.race([
    promise,
    new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), STEP_TIMEOUT_MS);
    }),
  ]).finally(() => clearTimeout(timer));
}

/** One socket.io v4 client (Engine.IO 4 over WebSocket), subscribed with an ack. */
function connectSio(group, client, url, subscribe) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(
      `${url.replace(/^http/, 'ws')}/socket.io/?EIO=4&transport=websocket`,
      WS_OPTIONS,
    );
    let ready = false;
    ws.on('message', (data) => {
      const type = data[0];
      if (type === 0x32 /* '2' ping */ && data.length === 1) {
        ws.send('3');
        return;
      }
      if (ready && type === 0x34 /* '4' message */ && data[1] === 0x32 /* '2' event */) {
        group.onEvent(client, data);
        return;
      }
      const text = data.toString('utf8');
      if (text.startsWith('0')) {
        ws.send('40');
      } else if (text.startsWith('40')) {
        ws.send(`421${JSON.stringify(['subscribe', subscribe])}`);
      } else if (text.startsWith('431')) {
        const [ack] = JSON.parse(text.slice(3));
        if (ack && ack.status === 'success') {
          ready = true;
          resolve(ws);
        } else {
          reject(new Error(`subscribe failed: ${text.slice(0, 300)}`));
        }
      } else if (!ready) {
        reject(new Error(`unexpected frame while connecting: ${text.slice(0, 300)}`));
      } else {
        fail(`${group.name}: unexpected frame ${text.slice(0, 300)}`);
      }
    });
    ws.on('error', (error) => reject(error));
    ws.on('close', (code) => {
      reject(new Error(`closed (${code}) while connecting`));
      if (!group.closing) fail(`${group.name}: a client was closed (${code})`);
    });
  });
}

async function connect({ group: name, url, clients }) {
  const group = groups.get(name) || new Group(name);
  groups.set(name, group);
  for (let start = 0; start < clients.length; start += CONNECT_CONCURRENCY) {
    const batch = clients
      .slice(start, start + CONNECT_CONCURRENCY)
      .map(({ accountId, subscribe }) => {
        const client = { ws: undefined, account: Buffer.from(accountId), count: 0 };
        group.clients.push(client);
        return withTimeout(connectSio(group, client, url, subscribe), `a client to ${url}`).then(
          (ws) => (client.ws = ws),
        );
      });
    await Promise.all(batch);
  }
}

function expect({ group: name, prefix, n }) {
  const group = groups.get(name);
  for (const client of group.clients) client.count = 0;
  group.latencies = [];
  group.run = { prefix: Buffer.from(prefix), prefixText: prefix, n, completed: 0 };
}

async function close({ group: name }) {
  const group = groups.get(name);
  if (!group) return;
  group.closing = true;
  await withTimeout(
    Promise.all(
      group.clients.map(({ ws }) => {
        if (!ws || ws.readyState === WebSocket.CLOSED) return undefined;
        const closed = new Promise((resolve) => ws.once('close', resolve));
        ws.close();
        return closed;
      }),
    ),
    `${name} clients to close`,
  );
  groups.delete(name);
}

process.on('message', (message) => {
  if (!message || typeof message.type !== 'string') return;
  const reply = (extra = {}) => send({ type: message.type, seq: message.seq, ...extra });
  switch (message.type) {
    case 'connect':
      connect(message).then(
        () => reply(),
        (error) => fail(`connect ${message.group}: ${error && error.message}`),
      );
      break;
    case 'expect':
      expect(message);
      reply();
      break;
    case 'latencies': {
      const group = groups.get(message.group);
      reply({
        // Microsecond resolution is all a reading on one machine is worth, and halves the IPC.
        latencies: group.latencies.map((ms) => Math.round(ms * 1000) / 1000),
        foreign: group.foreign,
        stray: group.stray,
      });
      break;
    }
    case 'close':
      close(message).then(
        () => reply(),
        (error) => fail(`close ${message.group}: ${error && error.message}`),
      );
      break;
  }
});
process.on('disconnect', () => process.exit(0));
send({ type: 'ready' });
