'use strict';
/**
 * The plain-WebSocket baseline: a `ws` server (as the gateway's, without compression) that
 * sends every connection the Kazoo 4.x event frame the gateway would send, encoded once per
 * event. Clients connect and send nothing. Driven over IPC (lib/raw-blast.js).
 */
const http = require('node:http');
const { WebSocketServer } = require('ws');
const { serveBlasts, send } = require('./lib/raw-blast');

const httpServer = http.createServer();
const wss = new WebSocketServer({
  server: httpServer,
  perMessageDeflate: false,
  maxPayload: 64 * 1024,
});

serveBlasts((payload, callId, accountId) => {
  const frame = JSON.stringify({
    action: 'event',
    subscribed_key: 'call.CHANNEL_CREATE.*',
    subscription_key: `call.${accountId}.CHANNEL_CREATE.*`,
    name: 'CHANNEL_CREATE',
    routing_key: `call.${accountId}.CHANNEL_CREATE.${callId}`,
    data: payload,
  });
  for (const socket of wss.clients) socket.send(frame);
});

httpServer.listen(0, '127.0.0.1', () =>
  send({ type: 'listening', port: httpServer.address().port }),
);
