'use strict';
/**
 * The raw socket.io baseline of `bench/throughput.js`: a plain socket.io 4 server (websocket
 * transport only, nothing of Blackhole) run as a child process and driven over IPC.
 *
 *   parent → {type: 'blast', id, n, prefix, payload, mode}   emit n CHANNEL_CREATE events to
 *            every connected socket; mode 'broadcast' = io.emit (encoded once for all sockets),
 *            'per-socket' = socket.emit on each socket (encoded per socket, as Blackhole does)
 *   child  → {type: 'listening', port}, {type: 'blasted', id}, {type: 'failed', message}
 *
 * Emission is flow-controlled: a socket whose engine.io write buffer holds more than
 * HIGH_WATER packets is waited for (transport 'ready'), so the server never queues the whole run
 * in memory ahead of slow clients.
 */
const http = require('node:http');
const { Server } = require('socket.io');

const HIGH_WATER = 512;
const BATCH = 64;

const httpServer = http.createServer();
const io = new Server(httpServer, {
  transports: ['websocket'],
  serveClient: false,
  maxHttpBufferSize: 65536,
});

function send(message) {
  if (process.connected) process.send(message);
}

/** Resolves once every socket's write buffer is below HIGH_WATER (or the socket is gone). */
async function belowHighWater() {
  for (const socket of io.sockets.sockets.values()) {
    const conn = socket.conn;
    while (conn.readyState === 'open' && conn.writeBuffer.length > HIGH_WATER) {
      await new Promise((resolve) => {
        conn.transport.once('ready', resolve);
        conn.once('close', resolve);
      });
    }
  }
}

async function blast({ n, prefix, payload, mode, batch = BATCH }) {
  const event = { ...payload };
  for (let i = 0; i < n; i++) {
    // socket.io encodes synchronously inside emit, so mutating the same object is safe.
    event['Call-ID'] = `${prefix}${i}`;
    event['Msg-ID'] = `${prefix}${i}`;
    if (mode === 'broadcast') {
      io.emit('CHANNEL_CREATE', event);
    } else {
      for (const socket of io.sockets.sockets.values()) socket.emit('CHANNEL_CREATE', event);
    }
    if ((i + 1) % batch === 0) {
      await belowHighWater();
      await new Promise(setImmediate);
    }
  }
}

process.on('message', (message) => {
  if (message && message.type === 'blast') {
    blast(message).then(
      () => send({ type: 'blasted', id: message.id }),
      (error) =>
        send({ type: 'failed', message: String(error && error.stack ? error.stack : error) }),
    );
  }
});

// The parent owns this process: when its IPC channel goes away, so do we.
process.on('disconnect', () => process.exit(0));

httpServer.listen(0, '127.0.0.1', () => {
  send({ type: 'listening', port: httpServer.address().port });
});
