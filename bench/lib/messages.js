'use strict';
/**
 * The one message every scenario moves: Kazoo's CHANNEL_CREATE as it appears on the `callevt`
 * exchange (test/fixtures/call/02-amqp-callevt-CHANNEL_CREATE.json), with a fresh Call-ID and
 * the scenario's account. Bodies are built before any clock starts.
 */
const fs = require('node:fs');
const path = require('node:path');

const FIXTURE = JSON.parse(
  fs.readFileSync(
    path.join(
      __dirname,
      '..',
      '..',
      'test',
      'fixtures',
      'call',
      '02-amqp-callevt-CHANNEL_CREATE.json',
    ),
    'utf8',
  ),
);
const BODY = FIXTURE.body;

/** The event body for `accountId` with Call-ID (and Msg-ID) `id`. */
function callEvent(accountId, id) {
  return {
    ...BODY,
    'Call-ID': id,
    'Msg-ID': id,
    'Custom-Channel-Vars': { ...BODY['Custom-Channel-Vars'], 'Account-ID': accountId },
  };
}

/**
 * `count` serialized messages; ids are `<prefix><i>`, which are routing-key safe and let
 * clients tell a run's events from everything else by a substring search.
 */
function buildMessages(accountId, prefix, count) {
  const messages = new Array(count);
  for (let i = 0; i < count; i++) {
    const id = `${prefix}${i}`;
    messages[i] = {
      routingKey: `call.CHANNEL_CREATE.${id}`,
      content: Buffer.from(JSON.stringify(callEvent(accountId, id))),
    };
  }
  return messages;
}

/** Publishes in order, honouring the channel's back-pressure, then waits for every confirm. */
async function publishAll(channel, exchange, messages, { deadline, timeoutMs }) {
  const { once } = require('node:events');
  for (let i = 0; i < messages.length; i++) {
    const { routingKey, content } = messages[i];
    const ok = channel.publish(exchange, routingKey, content, { contentType: 'application/json' });
    if (!ok) await deadline(once(channel, 'drain'), timeoutMs, 'the AMQP channel to drain');
  }
  await deadline(channel.waitForConfirms(), timeoutMs, 'publisher confirms');
}

module.exports = { callEvent, buildMessages, publishAll, BODY };
