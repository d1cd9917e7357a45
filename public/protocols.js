// The three ways the console talks to Blackhole. Each `open*` function connects, subscribes every
// binding, and reports through `ui`:
//   ui.state('connecting' | 'connected' | 'disconnected' | 'error')
//   ui.event({ name, payload, binding?, routingKey?, frame? })
//   ui.error(title, message, payload?)
//   ui.info(text, payload?)
//   ui.closed()   the connection is gone for good (not after close(): the caller knows then)
// and returns `{ close() }`.
import { ERROR_EVENTS } from './kazoo-events.js';

export const PROTOCOLS = {
  socketio4: { label: 'socket.io v4', client: 'socketio4' },
  'kazoo-ws': { label: 'Kazoo 4.x WebSocket', client: null },
  socketio09: { label: 'socket.io 0.9', client: 'socketio09' },
};

/** The socket.io browser clients Blackhole serves; both define the global `io`. */
const CLIENT_SCRIPTS = {
  socketio4: 'vendor/socket.io-4/socket.io.min.js',
  socketio09: 'vendor/socket.io-0.9.6.min.js',
};

let loadedClient = null;
let loading = null;

/**
 * Whether `client` can be used in this page: true when nothing or that client is loaded. Once one
 * socket.io generation owns the global `io`, the other one needs a fresh page.
 */
export function canLoadClient(client) {
  return client === null || loadedClient === null || loadedClient === client;
}

/** Loads a socket.io client once, by injecting its script tag; resolves to its `io`. */
export function loadClient(client) {
  if (loadedClient === client) return loading;
  if (loadedClient !== null) {
    return Promise.reject(new Error(`the ${loadedClient} client is already loaded`));
  }
  loadedClient = client;
  loading = new Promise((resolve, reject) => {
    const script = document.createElement('script');
    script.src = CLIENT_SCRIPTS[client];
    script.async = true;
    script.onload = () =>
      typeof window.io === 'undefined'
        ? reject(new Error(`${script.src} did not define io`))
        : resolve(window.io);
    script.onerror = () => {
      loadedClient = null;
      script.remove();
      reject(new Error(`could not load ${CLIENT_SCRIPTS[client]}`));
    };
    document.head.append(script);
  });
  return loading;
}

function subscribeRequest(config, binding) {
  return { auth_token: config.authToken, account_id: config.accountId, binding };
}

/**
 * socket.io with the v4 client: one `subscribe` per binding, acknowledged; `onAny` for events.
 * A refused subscribe arrives twice, as an `error`/`auth_failure` event and then as the error
 * ack; while acks are pending such events are held, so the ack can report them once, with the
 * binding they concern.
 */
export function openSocketIo4(io, config, ui) {
  const socket = io(location.origin, { transports: ['websocket'], forceNew: true });
  let closing = false;
  let pending = 0;
  let held = [];

  const flushHeld = () => {
    for (const { name, payload } of held) ui.error(name, errorText(payload), payload);
    held = [];
  };
  const settled = (binding, timeout, ack) => {
    pending -= 1;
    if (timeout) ui.error('subscribe', `no answer for ${binding}`);
    else if (ack && ack.status === 'success') ui.info(`subscribed ${binding}`, ack);
    else {
      const text = errorText(ack && ack.data);
      const twin = held.findIndex((event) => errorText(event.payload) === text);
      const name = twin >= 0 ? held.splice(twin, 1)[0].name : 'subscribe';
      ui.error(name, `${binding}: ${text}`, ack);
    }
    if (pending === 0) flushHeld();
  };

  socket.on('connect', () => {
    ui.state('connected');
    for (const binding of config.bindings) {
      pending += 1;
      socket
        .timeout(10000)
        .emit('subscribe', subscribeRequest(config, binding), (timeout, ack) =>
          settled(binding, timeout, ack),
        );
    }
  });
  socket.io.on('reconnect_attempt', () => ui.state('connecting'));
  socket.on('connect_error', (error) => {
    ui.state('error');
    ui.error('connect_error', error.message);
  });
  socket.on('disconnect', (reason) => {
    if (closing) return ui.state('disconnected');
    ui.state(socket.active ? 'connecting' : 'disconnected');
    ui.info(`disconnected (${reason})${socket.active ? ', reconnecting' : ''}`);
    if (!socket.active) ui.closed();
  });
  socket.onAny((name, payload) => {
    if (!ERROR_EVENTS.includes(name)) ui.event({ name, payload });
    else if (pending > 0) held.push({ name, payload });
    else ui.error(name, errorText(payload), payload);
  });

  return {
    close() {
      closing = true;
      socket.disconnect();
    },
  };
}

/** Kazoo 4.x's plain-WebSocket JSON protocol: one `subscribe` with every binding. */
export function openKazooWebSocket(config, ui) {
  const scheme = location.protocol === 'https:' ? 'wss://' : 'ws://';
  const ws = new WebSocket(`${scheme}${location.host}/`);
  let closing = false;
  let sequence = 0;

  ws.addEventListener('open', () => {
    ui.state('connected');
    sequence += 1;
    ws.send(
      JSON.stringify({
        action: 'subscribe',
        auth_token: config.authToken,
        request_id: `console-${Date.now().toString(36)}-${sequence}`,
        data: { account_id: config.accountId, bindings: config.bindings },
      }),
    );
  });
  ws.addEventListener('message', (message) => {
    let frame;
    try {
      frame = JSON.parse(message.data);
    } catch (_) {
      ui.error('invalid frame', 'the server sent a frame that is not JSON');
      return;
    }
    if (frame === null || typeof frame !== 'object') return;
    if (frame.action === 'event') {
      ui.event({
        name: String(frame.name),
        payload: frame.data,
        binding: frame.subscribed_key,
        routingKey: frame.routing_key,
        frame,
      });
    } else if (frame.action === 'reply' && frame.status === 'success') {
      const data = frame.data || {};
      const subscribed = Array.isArray(data.subscribed) ? data.subscribed.join(', ') : '';
      ui.info(subscribed ? `subscribed ${subscribed}` : 'request succeeded', frame);
    } else if (frame.action === 'reply') {
      ui.error('error reply', errorText(frame.data), frame);
    } else {
      ui.info(`${frame.action || 'frame'} received`, frame);
    }
  });
  ws.addEventListener('close', (event) => {
    if (closing) return ui.state('disconnected');
    ui.state('error');
    ui.error('connection closed', `code ${event.code}${event.reason ? `: ${event.reason}` : ''}`);
    ui.closed();
  });

  return {
    close() {
      closing = true;
      ws.close(1000);
    },
  };
}

/** socket.io events the 0.9 client emits about the connection itself, not from the server. */
const SOCKETIO09_LIFECYCLE = new Set([
  'connect',
  'connecting',
  'connect_failed',
  'disconnect',
  'reconnect',
  'reconnecting',
  'reconnect_failed',
  'message',
]);

/**
 * socket.io 0.9 (Kazoo 3.x's protocol) with the 0.9.6 client: one `subscribe` per binding, no ack.
 * 0.9 has no `onAny`, so `$emit` (what the client calls for every incoming event) is wrapped: it
 * sees Kazoo 3.x's events (KAZOO3_EVENTS in kazoo-events.js), `auth_failure` and `error` alike.
 */
export function openSocketIo09(io, config, ui) {
  const socket = io.connect(location.origin, { 'force new connection': true });
  let closing = false;

  const deliver = socket.$emit;
  socket.$emit = function (name, ...args) {
    if (!SOCKETIO09_LIFECYCLE.has(name)) {
      const payload = args[0];
      if (ERROR_EVENTS.includes(name)) {
        if (name === 'error' && !socket.socket.connected) ui.state('error');
        ui.error(name, errorText(payload), payload);
      } else {
        ui.event({ name, payload });
      }
    }
    return deliver.call(this, name, ...args);
  };

  socket.on('connecting', () => ui.state('connecting'));
  socket.on('connect', () => {
    ui.state('connected');
    for (const binding of config.bindings) {
      socket.emit('subscribe', subscribeRequest(config, binding));
      ui.info(`subscribe sent for ${binding}`);
    }
  });
  socket.on('connect_failed', () => {
    ui.state('error');
    ui.error('connect_failed', 'could not connect with socket.io 0.9');
  });
  socket.on('reconnecting', () => ui.state('connecting'));
  socket.on('reconnect_failed', () => {
    ui.state('error');
    ui.error('reconnect_failed', 'gave up reconnecting');
    ui.closed();
  });
  socket.on('disconnect', (reason) => {
    if (closing) return ui.state('disconnected');
    ui.state('connecting');
    ui.info(`disconnected (${reason || 'transport closed'})`);
  });

  return {
    close() {
      closing = true;
      socket.disconnect();
    },
  };
}

/** The message of an `auth_failure`/`error` payload or of an error reply's `data`. */
function errorText(data) {
  if (typeof data === 'string') return data;
  if (data === null || typeof data !== 'object') return 'unknown error';
  const parts = [];
  if (Array.isArray(data.errors)) parts.push(data.errors.join('; '));
  else if (typeof data.message === 'string') parts.push(data.message);
  else if (data.data && typeof data.data === 'object') return errorText(data.data);
  if (typeof data.code === 'string') parts.push(`(${data.code})`);
  if (data.temporary === true) parts.push('temporary, retry later');
  return parts.join(' ') || 'unknown error';
}
