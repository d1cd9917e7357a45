'use strict';
/**
 * A share of the bench's clients, in a process of its own: 1,000 clients in the measuring
 * process would make the clients, not the server, what the bench measures. The same worker
 * code connects to the gateway and to the raw baselines, and counts the same way for both.
 *
 * Clients are deliberately thin, so that the cores the servers need are not spent decoding:
 *   sio       socket.io v4 protocol (Engine.IO 4 over WebSocket) spoken directly with `ws`:
 *             open, namespace connect, `subscribe` with an ack, pong to pings; event frames
 *             are counted without being parsed
 *   kazoo-ws  Kazoo 4.x plain WebSocket: a `subscribe` request, then event frames
 *   ws        a plain WebSocket that only listens (the raw `ws` baseline)
 * A frame counts for the current run when it contains the run's Call-ID prefix; one that does
 * not contain the client's own account id is a leak (`foreign`): the isolation check.
 *
 *   parent → {type: 'connect', seq, group, kind, url, count, accountId, subscribe?}
 *   parent → {type: 'expect', seq, group, prefix, n}  … child → {type: 'done', group, prefix}
 *            once every client of the group has n events of the prefix
 *   parent → {type: 'counts', seq}  → {groups: {name: {clients, foreign, stray}}}
 *   parent → {type: 'close', seq, group}
 *   child  → {type: 'ready'} at start, {type: 'failed', message} when a client breaks
 */
const { WebSocket } = require('ws');

const CONNECT_CONCURRENCY = 50;
const STEP_TIMEOUT_MS = 20000;
const WS_OPTIONS = { perMessageDeflate: false, skipUTF8Validation: true };

const groups = new Map();

function send(message) {
  if (process.connected) process.send(message);
}

function fail(message) {
  send({ type: 'failed', message });
}

class Group {
  constructor(name, accountId) {
    this.name = name;
    this.account = Buffer.from(accountId);
    this.sockets = [];
    this.counts = [];
    this.run = undefined;
    this.foreign = 0;
    this.stray = 0;
    this.closing = false;
  }

  /** The hot path: one call per frame received by any client of the group. */
  onEvent(index, frame) {
    if (frame.indexOf(this.account) === -1) {
      this.foreign++;
      return;
    }
    const run = this.run;
    if (run === undefined || frame.indexOf(run.prefix) === -1) {
      this.stray++;
      return;
    }
    const count = ++this.counts[index];
    if (count === run.n) {
      if (++run.completed === this.sockets.length) {
        send({ type: 'done', group: this.name, prefix: run.prefixText });
      }
    } else if (count > run.n) {
      fail(`${this.name} client ${index} got more than ${run.n} events of ${run.prefixText}`);
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

/** One socket.io v4 client; resolves once connected (and subscribed when asked). */
function connectSio(group, index, url, subscribe) {
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
        group.onEvent(index, data);
        return;
      }
      const text = data.toString('utf8');
      if (text.startsWith('0')) {
        ws.send('40'); // Engine.IO open → connect to the main namespace
      } else if (text.startsWith('40')) {
        if (!subscribe) {
          ready = true;
          resolve(ws);
        } else {
          ws.send(`421${JSON.stringify(['subscribe', subscribe])}`);
        }
      } else if (text.startsWith('431')) {
        const [ack] = JSON.parse(text.slice(3));
        if (ack && ack.status === 'success') {
          ready = true;
          resolve(ws);
        } else {
          reject(new Error(`subscribe failed: ${text.slice(0, 300)}`));
        }
      } else if (text.startsWith('44')) {
        reject(new Error(`socket.io connect refused: ${text.slice(0, 300)}`));
      } else if (!ready) {
        reject(new Error(`unexpected frame while connecting: ${text.slice(0, 300)}`));
      } else {
        fail(`${group.name} client ${index}: unexpected frame ${text.slice(0, 300)}`);
      }
    });
    watch(ws, group, index, reject);
  });
}

/** One Kazoo 4.x plain-WebSocket client, subscribed; or a bare listener (`subscribe` unset). */
function connectKazooWs(group, index, url, subscribe) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`${url.replace(/^http/, 'ws')}/`, WS_OPTIONS);
    let ready = false;
    ws.on('open', () => {
      if (!subscribe) {
        ready = true;
        resolve(ws);
        return;
      }
      ws.send(
        JSON.stringify({
          action: 'subscribe',
          auth_token: subscribe.auth_token,
          request_id: 'bench-subscribe',
          data: { account_id: subscribe.account_id, binding: subscribe.binding },
        }),
      );
    });
    ws.on('message', (data) => {
      if (ready) {
        group.onEvent(index, data);
        return;
      }
      const frame = JSON.parse(data.toString('utf8'));
      if (frame.action === 'reply' && frame.request_id === 'bench-subscribe') {
        if (frame.status === 'success') {
          ready = true;
          resolve(ws);
        } else {
          reject(new Error(`ws subscribe failed: ${JSON.stringify(frame).slice(0, 300)}`));
        }
      }
    });
    watch(ws, group, index, reject);
  });
}

function watch(ws, group, index, reject) {
  ws.on('error', (error) => reject(error));
  ws.on('close', (code) => {
    reject(new Error(`closed (${code}) while connecting`));
    if (!group.closing) fail(`${group.name} client ${index} was closed (${code})`);
  });
}

async function connect({ group: name, kind, url, count, accountId, subscribe }) {
  const group = groups.get(name) || new Group(name, accountId);
  groups.set(name, group);
  const open = { sio: connectSio, 'kazoo-ws': connectKazooWs, ws: connectKazooWs }[kind];
  if (!open) throw new Error(`unknown client kind ${kind}`);
  for (let start = 0; start < count; start += CONNECT_CONCURRENCY) {
    const batch = [];
    for (let i = start; i < Math.min(count, start + CONNECT_CONCURRENCY); i++) {
      const index = group.sockets.length + (i - start);
      group.counts[index] = 0;
      batch.push(withTimeout(open(group, index, url, subscribe), `${kind} client to ${url}`));
    }
    group.sockets.push(...(await Promise.all(batch)));
  }
}

function expect({ group: name, prefix, n }) {
  const group = groups.get(name);
  group.counts.fill(0);
  group.run = { prefix: Buffer.from(prefix), prefixText: prefix, n, completed: 0 };
}

async function close({ group: name }) {
  const group = groups.get(name);
  if (!group) return;
  group.closing = true;
  await withTimeout(
    Promise.all(
      group.sockets.map((ws) => {
        if (ws.readyState === WebSocket.CLOSED) return undefined;
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
    case 'counts': {
      const counts = {};
      for (const [name, group] of groups) {
        counts[name] = {
          clients: group.sockets.length,
          foreign: group.foreign,
          stray: group.stray,
        };
      }
      reply({ groups: counts });
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
