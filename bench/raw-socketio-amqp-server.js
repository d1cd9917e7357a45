'use strict';
/**
 * The latency baseline: the least a socket.io server fed by RabbitMQ can do. A bare socket.io 4
 * server (the gateway's server options) whose clients send `subscribe` with an `account_id` and
 * join that account's room, no authentication; and a plain amqplib consumer on a queue bound
 * the way the gateway binds its node queue (topic exchange, `call.CHANNEL_CREATE.*`, exclusive,
 * auto-delete, the gateway's prefetch, a manual ack per message) that parses each body and emits
 * it to the room of its `Custom-Channel-Vars.Account-ID`.
 *
 * It reads the bench's own exchange (BENCH_EXCHANGE), never `callevt`, so the gateway and the
 * baseline never see each other's messages.
 *
 *   child → {type: 'listening', port} once consuming, {type: 'failed', message}
 */
const http = require('node:http');
const amqp = require('amqplib');
const { Server } = require('socket.io');

const { AMQP_URL, BENCH_EXCHANGE, BENCH_BINDING, BENCH_PREFETCH } = process.env;

function send(message) {
  if (process.connected) process.send(message);
}

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

io.on('connection', (socket) => {
  socket.on('subscribe', (request, ack) => {
    if (typeof ack !== 'function') return;
    if (!request || typeof request.account_id !== 'string') {
      ack({ status: 'error', message: 'account_id required' });
      return;
    }
    socket.join(request.account_id);
    ack({ status: 'success' });
  });
});

async function main() {
  const connection = await amqp.connect(AMQP_URL);
  connection.on('error', (error) => send({ type: 'failed', message: String(error) }));
  const channel = await connection.createChannel();
  await channel.assertExchange(BENCH_EXCHANGE, 'topic', { durable: false, autoDelete: true });
  const { queue } = await channel.assertQueue('', {
    exclusive: true,
    autoDelete: true,
    durable: false,
  });
  await channel.bindQueue(queue, BENCH_EXCHANGE, BENCH_BINDING);
  await channel.prefetch(Number(BENCH_PREFETCH));
  await channel.consume(
    queue,
    (message) => {
      if (!message) return;
      const body = JSON.parse(message.content.toString('utf8'));
      const vars = body['Custom-Channel-Vars'];
      const accountId = vars && vars['Account-ID'];
      if (typeof accountId === 'string') io.to(accountId).emit('CHANNEL_CREATE', body);
      channel.ack(message);
    },
    { noAck: false },
  );
  await new Promise((resolve) => httpServer.listen(0, '127.0.0.1', resolve));
  send({ type: 'listening', port: httpServer.address().port });
}

process.on('disconnect', () => process.exit(0));
main().catch((error) => send({ type: 'failed', message: String(error && error.stack) }));
