'use strict';
/**
 * The socket.io baseline: a bare socket.io 4 server (the version the gateway runs) with the
 * gateway's server options and nothing else. Its connections join nothing; an event goes to all
 * of them with `io.emit`, which socket.io encodes once. Driven over IPC (lib/raw-blast.js) and,
 * for memory, by bench/gc-probe.js.
 */
const http = require('node:http');
const { Server } = require('socket.io');
const { serveBlasts, send } = require('./lib/raw-blast');

const httpServer = http.createServer();
// As SocketIoGateway and GatewayIoAdapter configure the gateway's server.
const io = new Server(httpServer, {
  path: '/socket.io/',
  allowEIO3: true,
  serveClient: false,
  cors: { origin: true, credentials: true },
  maxHttpBufferSize: 64 * 1024,
  destroyUpgrade: false,
});

serveBlasts((payload) => io.emit('CHANNEL_CREATE', payload));

httpServer.listen(0, '127.0.0.1', () =>
  send({ type: 'listening', port: httpServer.address().port }),
);
