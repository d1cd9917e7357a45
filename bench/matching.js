'use strict';
/**
 * What one event costs the core when an account holds many bindings: 100,000 subscriptions of
 * one account to distinct call ids (`call.*.<CALL_ID>`, as a CTI integration watching every
 * call would hold), then events for calls some of them watch and for calls none does. Runs the
 * built core (`npm run build` first) in this process, no broker, no sockets: the figure is the
 * matching index alone. `BENCH_BINDINGS` changes the count.
 *
 *   node bench/matching.js
 */
const path = require('node:path');

const DIST = path.join(__dirname, '..', 'dist');
const { EventIngress } = require(path.join(DIST, 'core/events/event-ingress'));
const { EventStats } = require(path.join(DIST, 'core/events/event-stats'));
const { SubscriptionRegistry } = require(
  path.join(DIST, 'core/subscriptions/subscription.registry'),
);
const { CallFamily } = require(path.join(DIST, 'features/call/call.family'));

const ACCOUNT = '4b8c6fec4b2597882c0390202d195419';
const BINDINGS = Number(process.env.BENCH_BINDINGS || 100000);
const EVENTS = 200000;

const registry = new SubscriptionRegistry();
const stats = new EventStats();
const ingress = new EventIngress(registry, stats);
const call = new CallFamily();
let delivered = 0;
const sessions = Array.from({ length: 1000 }, (_, i) => ({
  id: `s${i}`,
  send: () => delivered++,
}));
const started = process.hrtime.bigint();
for (let i = 0; i < BINDINGS; i++) {
  const binding = call.parseBinding(`call.*.call-${i}`);
  registry.add(sessions[i % sessions.length], ACCOUNT, 'call', binding, call.brokerKeys(binding));
}
const subscribeMs = Number(process.hrtime.bigint() - started) / 1e6;

const readers = [{ family: 'call', describe: (m, d) => call.describe(m, d) }];
const event = (callId) => ({
  message: {
    'Event-Name': 'CHANNEL_CREATE',
    'Call-ID': callId,
    'Custom-Channel-Vars': { 'Account-ID': ACCOUNT },
  },
  delivery: { exchange: 'callevt', routingKey: `call.CHANNEL_CREATE.${callId}` },
});
const watched = Array.from({ length: 1000 }, (_, i) => event(`call-${(i * 97) % BINDINGS}`));
const unwatched = Array.from({ length: 1000 }, (_, i) => event(`other-${i}`));

function run(events) {
  const t = process.hrtime.bigint();
  for (let i = 0; i < EVENTS; i++) {
    const { message, delivery } = events[i % events.length];
    ingress.ingest(readers, message, delivery);
  }
  return Number(process.hrtime.bigint() - t) / 1e3 / EVENTS;
}

run(watched); // warm-up
const perWatched = run(watched);
const perUnwatched = run(unwatched);
process.stdout.write(
  `${BINDINGS.toLocaleString('en')} bindings on one account (subscribed in ${subscribeMs.toFixed(0)} ms)\n` +
    `  event for a watched call:   ${perWatched.toFixed(2)} µs (describe, match, one delivery)\n` +
    `  event for an unwatched call: ${perUnwatched.toFixed(2)} µs\n` +
    `  deliveries: ${delivered.toLocaleString('en')}\n`,
);
