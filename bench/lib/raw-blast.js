'use strict';
/**
 * The IPC side the raw baseline servers share: the bench asks for a run's events ahead of
 * time (`prepare`), then starts the clock and says `go`; the server sends them as fast as it
 * can and answers `sent`. Payloads are built in `prepare`, so the measured part is what the
 * gateway does per event after parsing it: encode once, write to every connection.
 *
 *   parent → {type: 'prepare', seq, prefix, n, accountId}   child → {type: 'prepare', seq}
 *   parent → {type: 'go', seq}                               child → {type: 'go', seq} when sent
 *   child  → {type: 'listening', port}, {type: 'failed', message}
 */
const { callEvent } = require('./messages');

/**
 * The gateway takes deliveries as amqplib parses them from a socket read, a few dozen at a
 * time, and returns to the event loop in between; the baselines yield as often.
 */
const BATCH = 32;

function send(message) {
  if (process.connected) process.send(message);
}

/** `sendEvent(payload, id, accountId)` sends one event to every connection. */
function serveBlasts(sendEvent) {
  let prepared;
  process.on('message', (message) => {
    if (!message) return;
    if (message.type === 'prepare') {
      const payloads = new Array(message.n);
      for (let i = 0; i < message.n; i++) {
        payloads[i] = callEvent(message.accountId, `${message.prefix}${i}`);
      }
      prepared = { payloads, accountId: message.accountId };
      send({ type: 'prepare', seq: message.seq });
    } else if (message.type === 'go') {
      const { payloads, accountId } = prepared;
      prepared = undefined;
      (async () => {
        for (let i = 0; i < payloads.length; i++) {
          sendEvent(payloads[i], payloads[i]['Call-ID'], accountId);
          if ((i + 1) % BATCH === 0) await new Promise(setImmediate);
        }
      })().then(
        () => send({ type: 'go', seq: message.seq }),
        (error) => send({ type: 'failed', message: String(error && error.stack) }),
      );
    }
  });
  // The bench owns this process: when its IPC channel goes away, so do we.
  process.on('disconnect', () => process.exit(0));
}

module.exports = { serveBlasts, send };
