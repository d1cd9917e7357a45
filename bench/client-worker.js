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
 * Resume groups (the reconnect storm, bench/storm-round.js) are socket.io clients of many
 * accounts, one account each, that keep the last position they saw (read off the frame's text,
 * not parsed), hang up together and come back together with `resume`: a client refused with
 * `replay_busy` asks again after a short backoff. They count, per client, the run's events (the
 * replayed ones) and tell what each resume's ack said and when it came.
 *
 *   parent → {type: 'connect', seq, group, kind, url, count, accountId, subscribe?}
 *   parent → {type: 'connect', seq, group, kind: 'sio', url, clients: [{accountId, subscribe}]}
 *            a resume group
 *   parent → {type: 'leave', seq, group} → {withoutPosition}: every client of a resume group
 *            hangs up and keeps its position
 *   parent → {type: 'resume', seq, group, url, prefix, n, backoffMs}: they all come back and
 *            resume with their positions, armed for n events of the prefix each; answered once
 *            every ack is in → {firstAskAt, lastAckAt (ms since the epoch), recovered,
 *            notRecovered, retries, maxRetries, shortAtAck}
 *   parent → {type: 'tally', seq, group, prefix} → {clients, exact, short, missing, over, extra,
 *            foreign, stray}: each client's count of that run's events against its n
 *   parent → {type: 'expect', seq, group, prefix, n}  … child → {type: 'done', group, prefix}
 *            once every client of the group has n events of the prefix
 *   parent → {type: 'counts', seq}  → {groups: {name: {clients, foreign, stray}}}
 *   parent → {type: 'close', seq, group}
 *   child  → {type: 'ready'} at start, {type: 'failed', message} when a client breaks
 */
const { performance } = require('node:perf_hooks');
const { WebSocket } = require('ws');

const CONNECT_CONCURRENCY = 50;
const RESUME_CONCURRENCY = 250;
const RUNS_KEPT = 4;
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

  expect(prefix, n) {
    this.counts.fill(0);
    this.run = { prefix: Buffer.from(prefix), prefixText: prefix, n, completed: 0 };
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

const POSITION = Buffer.from('"position":"');

/** The position an event frame carries (its `{position}` argument comes last), or undefined. */
function positionOf(frame) {
  const at = frame.lastIndexOf(POSITION);
  if (at === -1) return undefined;
  const start = at + POSITION.length;
  const end = frame.indexOf(0x22 /* " */, start);
  return end === -1 ? undefined : frame.toString('latin1', start, end);
}

/** Milliseconds since the epoch, comparable between the bench's processes on one machine. */
const clock = () => performance.timeOrigin + performance.now();

/**
 * Clients of many accounts that keep their positions and resume with them. A run's counts
 * outlive the next run: the replayed events are tallied after a later marker has arrived, so
 * that a late duplicate is counted too.
 */
class ResumeGroup {
  constructor(name) {
    this.name = name;
    this.sockets = [];
    this.clients = []; // {account: Buffer, subscribe, position, askedAt, ackAt, recovered, retries}
    this.runs = []; // newest first, at most RUNS_KEPT
    this.foreign = 0;
    this.stray = 0;
    this.closing = false;
  }

  add(accountId, subscribe) {
    this.clients.push({ account: Buffer.from(accountId), subscribe, position: undefined });
    return this.clients.length - 1;
  }

  expect(prefix, n) {
    const counts = new Array(this.clients.length).fill(0);
    this.runs.unshift({ prefix: Buffer.from(prefix), prefixText: prefix, n, completed: 0, counts });
    this.runs.length = Math.min(this.runs.length, RUNS_KEPT);
  }

  onEvent(index, frame) {
    const client = this.clients[index];
    if (frame.indexOf(client.account) === -1) {
      this.foreign++;
      return;
    }
    const position = positionOf(frame);
    if (position !== undefined) client.position = position;
    const run = this.runs.find((r) => frame.indexOf(r.prefix) !== -1);
    if (run === undefined) {
      this.stray++;
      return;
    }
    // More than n is counted, not failed at once: the round reports duplicates with the rest.
    if (++run.counts[index] === run.n && run === this.runs[0]) {
      if (++run.completed === this.clients.length) {
        send({ type: 'done', group: this.name, prefix: run.prefixText });
      }
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
  let cause = '';
  ws.on('error', (error) => {
    cause = `: ${error.message}`;
    reject(error);
  });
  ws.on('close', (code, reason) => {
    cause ||= reason.length > 0 ? `: ${reason.toString('utf8')}` : '';
    reject(new Error(`closed (${code}${cause}) while connecting`));
    if (!group.closing) fail(`${group.name} client ${index} was closed (${code}${cause})`);
  });
}

async function connect({ group: name, kind, url, count, accountId, subscribe, clients }) {
  if (clients) return connectResumeGroup(name, url, clients);
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

async function connectResumeGroup(name, url, clients) {
  const group = groups.get(name) || new ResumeGroup(name);
  groups.set(name, group);
  for (let start = 0; start < clients.length; start += CONNECT_CONCURRENCY) {
    const batch = clients
      .slice(start, start + CONNECT_CONCURRENCY)
      .map(({ accountId, subscribe }) => {
        const index = group.add(accountId, subscribe);
        return withTimeout(connectSio(group, index, url, subscribe), `a client to ${url}`).then(
          (ws) => (group.sockets[index] = ws),
        );
      });
    await Promise.all(batch);
  }
}

/**
 * One client of a resume group back on a new connection: `resume` with its position, again
 * after `backoffMs` (plus jitter, so refused clients do not come back in step) while the node
 * answers `replay_busy`. Resolves on a successful ack.
 */
function resumeSio(group, index, url, backoffMs) {
  const client = group.clients[index];
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(
      `${url.replace(/^http/, 'ws')}/socket.io/?EIO=4&transport=websocket`,
      WS_OPTIONS,
    );
    group.sockets[index] = ws;
    let asked = 0;
    const ask = () => {
      client.askedAt ??= clock();
      const request = { ...client.subscribe, position: client.position };
      ws.send(`42${++asked}${JSON.stringify(['resume', request])}`);
    };
    ws.on('message', (data) => {
      const type = data[0];
      if (type === 0x32 /* '2' ping */ && data.length === 1) {
        ws.send('3');
        return;
      }
      // Replayed events come before the ack: counted from the namespace connect on.
      if (type === 0x34 /* '4' message */ && data[1] === 0x32 /* '2' event */) {
        group.onEvent(index, data);
        return;
      }
      const text = data.toString('utf8');
      if (text.startsWith('0')) {
        ws.send('40');
      } else if (text.startsWith('40')) {
        ask();
      } else if (text.startsWith('43')) {
        const [ack] = JSON.parse(text.slice(text.indexOf('[')));
        if (ack && ack.status === 'success') {
          client.ackAt = clock();
          client.recovered = ack.data && ack.data.recovered === true;
          client.countAtAck = group.runs[0].counts[index];
          resolve();
        } else if (ack && ack.data && ack.data.code === 'replay_busy') {
          client.retries++;
          setTimeout(ask, backoffMs + Math.random() * backoffMs);
        } else {
          reject(new Error(`resume failed: ${text.slice(0, 300)}`));
        }
      } else if (text.startsWith('44')) {
        reject(new Error(`socket.io connect refused: ${text.slice(0, 300)}`));
      } else {
        fail(`${group.name} client ${index}: unexpected frame ${text.slice(0, 300)}`);
      }
    });
    watch(ws, group, index, reject);
  });
}

/** Hangs up every client of the group and waits until each connection is closed. */
async function hangUp(group, what) {
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
    what,
  );
}

async function leave({ group: name }) {
  const group = groups.get(name);
  await hangUp(group, `${name} clients to hang up`);
  group.closing = false;
  return { withoutPosition: group.clients.filter((c) => c.position === undefined).length };
}

/**
 * Everyone back at once. Connections open RESUME_CONCURRENCY at a time per worker: a burst of
 * thousands of SYNs overflows the listen backlog, and the kernel's one-second SYN retry would
 * then be what the storm measures.
 */
async function resume({ group: name, url, prefix, n, backoffMs }) {
  const group = groups.get(name);
  group.expect(prefix, n);
  for (const client of group.clients) {
    client.askedAt = client.ackAt = client.recovered = client.countAtAck = undefined;
    client.retries = 0;
  }
  let next = 0;
  const lane = async () => {
    while (next < group.clients.length && !group.closing) {
      const index = next++;
      await resumeSio(group, index, url, backoffMs);
    }
  };
  try {
    await Promise.all(Array.from({ length: RESUME_CONCURRENCY }, lane));
  } catch (error) {
    // The bench gave up on the storm and closes the group: no failure of its own to report.
    if (group.closing) return { abandoned: true };
    throw error;
  }
  const clients = group.clients;
  return {
    firstAskAt: Math.min(...clients.map((c) => c.askedAt)),
    lastAckAt: Math.max(...clients.map((c) => c.ackAt)),
    ackAt: clients.map((c) => Math.round(c.ackAt)),
    recovered: clients.filter((c) => c.recovered).length,
    notRecovered: clients.filter((c) => !c.recovered).length,
    retries: clients.reduce((sum, c) => sum + c.retries, 0),
    retried: clients.filter((c) => c.retries > 0).length,
    maxRetries: Math.max(...clients.map((c) => c.retries)),
    shortAtAck: clients.filter((c) => c.countAtAck < n).length,
  };
}

/** Each client's count of a run's events against n: exact, short (missing), over (extra). */
function tally({ group: name, prefix }) {
  const group = groups.get(name);
  const run = group.runs.find((r) => r.prefixText === prefix);
  if (!run) throw new Error(`${name} had no run ${prefix}`);
  const n = run.n;
  let exact = 0;
  let missing = 0;
  let extra = 0;
  let short = 0;
  let over = 0;
  for (const count of run.counts) {
    if (count === n) exact++;
    else if (count < n) {
      short++;
      missing += n - count;
    } else {
      over++;
      extra += count - n;
    }
  }
  return {
    clients: group.clients.length,
    exact,
    short,
    missing,
    over,
    extra,
    foreign: group.foreign,
    stray: group.stray,
  };
}

function expect({ group: name, prefix, n }) {
  groups.get(name).expect(prefix, n);
}

async function close({ group: name }) {
  const group = groups.get(name);
  if (!group) return;
  await hangUp(group, `${name} clients to close`);
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
    case 'leave':
    case 'resume':
      ({ leave, resume })[message.type](message).then(
        (result) => reply(result),
        (error) => fail(`${message.type} ${message.group}: ${error && error.message}`),
      );
      break;
    case 'tally':
      try {
        reply(tally(message));
      } catch (error) {
        fail(error.message);
      }
      break;
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
