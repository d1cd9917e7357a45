'use strict';
/**
 * The ingest baseline: a plain amqplib consumer, in a process of its own as the gateway is, on
 * a queue bound the way the gateway binds its node queue (topic exchange, `call.CHANNEL_CREATE.*`,
 * exclusive, auto-delete), with the gateway's prefetch and a manual ack per message.
 *
 * It reads the bench's own exchange, not `callevt`, so the gateway never consumes the
 * baseline's messages and the baseline never consumes the gateway's.
 *
 *   parent → {type: 'expect', seq, prefix, n, parse}   child → {type: 'expect', seq}, then
 *            {type: 'done', prefix} once n messages whose routing key carries prefix were acked
 *   child  → {type: 'listening'} once consuming, {type: 'failed', message}
 *
 * `parse` makes the consumer JSON.parse each body (what any consumer of Kazoo events does);
 * without it the consumer only acks and counts.
 */
const amqp = require('amqplib');

const { AMQP_URL, BENCH_EXCHANGE, BENCH_QUEUE, BENCH_BINDING, BENCH_PREFETCH } = process.env;
const KEY_PREFIX = 'call.CHANNEL_CREATE.';

let current; // {prefix, n, count, parse}

function send(message) {
  if (process.connected) process.send(message);
}

async function main() {
  const connection = await amqp.connect(AMQP_URL);
  connection.on('error', (error) => send({ type: 'failed', message: String(error) }));
  const channel = await connection.createChannel();
  await channel.assertExchange(BENCH_EXCHANGE, 'topic', { durable: false, autoDelete: true });
  await channel.assertQueue(BENCH_QUEUE, { exclusive: true, autoDelete: true, durable: false });
  await channel.bindQueue(BENCH_QUEUE, BENCH_EXCHANGE, BENCH_BINDING);
  await channel.prefetch(Number(BENCH_PREFETCH));
  await channel.consume(
    BENCH_QUEUE,
    (message) => {
      if (!message) return;
      const run = current;
      if (run && run.parse) JSON.parse(message.content.toString('utf8'));
      channel.ack(message);
      if (run && message.fields.routingKey.startsWith(run.keyPrefix) && ++run.count === run.n) {
        send({ type: 'done', prefix: run.prefix });
      }
    },
    { noAck: false },
  );
  send({ type: 'listening' });
}

process.on('message', (message) => {
  if (message && message.type === 'expect') {
    current = { ...message, keyPrefix: KEY_PREFIX + message.prefix, count: 0 };
    send({ type: 'expect', seq: message.seq });
  }
});
process.on('disconnect', () => process.exit(0));

main().catch((error) => send({ type: 'failed', message: String(error && error.stack) }));
