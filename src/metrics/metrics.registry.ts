import { Injectable } from '@nestjs/common';
import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import { AmqpHealth } from '../amqp/amqp-health';
import { AuthService } from '../auth/auth.service';
import { CrossbarClient } from '../auth/crossbar.client';
import { EventStats } from '../core/events/event-stats';
import { SubscriptionRegistry } from '../core/subscriptions/subscription.registry';
import { LegacySocketIoServer } from '../gateways/socket-io-legacy/legacy-socket-io.server';
import { SocketIoGateway } from '../gateways/socket-io/socket-io.gateway';
import type { TransportLoad, TransportProtocol } from '../gateways/transport-load';
import { WsGateway } from '../gateways/ws/ws.gateway';
import { SnapshotHistogram } from './snapshot-histogram';

/** What the registry reads when scraped; tests hand in their own. */
export interface MetricSources {
  readonly transports: Readonly<Record<TransportProtocol, () => TransportLoad>>;
  readonly subscriptions: Pick<SubscriptionRegistry, 'sessionCount' | 'subscriptionCount'>;
  readonly events: EventStats;
  readonly broker: Pick<AmqpHealth, 'status'>;
  readonly crossbar: CrossbarClient['stats'];
  readonly authCache: Pick<AuthService, 'cacheCounts'>;
}

/** A counter set to totals the application keeps itself, at each scrape. */
function mirror(
  counter: Counter<string>,
  rows: readonly { labels: Record<string, string>; value: number }[],
): void {
  counter.reset();
  for (const { labels, value } of rows) counter.inc(labels, value);
}

/**
 * The node's Prometheus metrics, in a registry of its own (not prom-client's global one, so
 * that two applications in one process do not collide). Nothing is pushed: every metric is read
 * from the counters and state the application already keeps when `/metrics` is scraped. Labels
 * are protocols, exchanges, families, reasons, endpoints and outcomes, never an account or a
 * token, so their number stays bounded.
 */
export class MetricsRegistry {
  readonly registry = new Registry();

  constructor(sources: MetricSources) {
    const registers = [this.registry];
    const { transports, subscriptions, events, broker, crossbar, authCache } = sources;
    const protocols = Object.keys(transports) as TransportProtocol[];

    new Gauge({
      name: 'blackhole_connections',
      help: 'Open client connections, by protocol (socket.io 0.9: handshaken sessions).',
      labelNames: ['protocol'],
      registers,
      collect() {
        for (const protocol of protocols)
          this.set({ protocol }, transports[protocol]().connections);
      },
    });
    new Gauge({
      name: 'blackhole_outbound_buffered_bytes',
      help: 'Bytes written to client connections that have not gone out yet, by protocol.',
      labelNames: ['protocol'],
      registers,
      collect() {
        for (const protocol of protocols) {
          this.set({ protocol }, transports[protocol]().outboundBytes);
        }
      },
    });
    new Gauge({
      name: 'blackhole_subscribed_sessions',
      help: 'Client sessions holding at least one subscription.',
      registers,
      collect() {
        this.set(subscriptions.sessionCount);
      },
    });
    new Gauge({
      name: 'blackhole_subscriptions',
      help: 'Subscriptions (one per session, account and binding).',
      registers,
      collect() {
        this.set(subscriptions.subscriptionCount);
      },
    });

    new Counter({
      name: 'blackhole_events_received_total',
      help: 'Messages the broker consumers handed to the core, by exchange.',
      labelNames: ['exchange'],
      registers,
      collect() {
        mirror(
          this,
          [...events.receivedByExchange].map(([exchange, value]) => ({
            labels: { exchange },
            value,
          })),
        );
      },
    });
    new Counter({
      name: 'blackhole_events_delivered_total',
      help: 'Events handed to client sessions (one per session and event), by family.',
      labelNames: ['family'],
      registers,
      collect() {
        mirror(
          this,
          [...events.deliveredByFamily].map(([family, value]) => ({ labels: { family }, value })),
        );
      },
    });
    new Counter({
      name: 'blackhole_events_dropped_total',
      help:
        'Events not delivered, by reason (malformed, oversize, unread, without_account, ' +
        'no_subscriber, send_failed) and family ("unknown" when no family read the message).',
      labelNames: ['reason', 'family'],
      registers,
      collect() {
        mirror(
          this,
          events
            .dropped()
            .map(({ reason, family, count }) => ({ labels: { reason, family }, value: count })),
        );
      },
    });
    new Counter({
      name: 'blackhole_slow_consumer_disconnects_total',
      help: 'Connections dropped for leaving more than MAX_OUTBOUND_BYTES unsent.',
      registers,
      collect() {
        mirror(this, [{ labels: {}, value: events.slowConsumerDisconnects }]);
      },
    });
    new Counter({
      name: 'blackhole_replays_total',
      help: 'Resumes answered, by outcome: recovered (every missed event replayed) or not_recovered.',
      labelNames: ['outcome'],
      registers,
      collect() {
        mirror(this, [
          { labels: { outcome: 'recovered' }, value: events.replays.recovered },
          { labels: { outcome: 'not_recovered' }, value: events.replays.notRecovered },
          { labels: { outcome: 'refused' }, value: events.replaysRefused },
        ]);
      },
    });
    new Counter({
      name: 'blackhole_replayed_events_total',
      help: 'Events replayed to resuming sessions (one per session and event).',
      registers,
      collect() {
        mirror(this, [{ labels: {}, value: events.replayedEvents }]);
      },
    });
    new Counter({
      name: 'blackhole_replay_read_entries_total',
      help: 'Replay log entries the node read for resumes, matched or not (once per read, however many resumes it serves).',
      registers,
      collect() {
        mirror(this, [{ labels: {}, value: events.replayReadEntries }]);
      },
    });
    new Counter({
      name: 'blackhole_replay_memory_entries_total',
      help: "Replay log entries read from the node's memory of the newest ones (REPLAY_MEMORY_ENTRIES, REPLAY_MEMORY_BYTES) rather than from the broker.",
      registers,
      collect() {
        mirror(this, [{ labels: {}, value: events.replayMemoryEntries }]);
      },
    });
    new Gauge({
      name: 'blackhole_replay_memory_held_entries',
      help: "Replay log entries in the node's memory of the newest ones (at most REPLAY_MEMORY_ENTRIES).",
      registers,
      collect() {
        this.set(events.replayMemoryHeldEntries);
      },
    });
    new Gauge({
      name: 'blackhole_replay_memory_held_bytes',
      help: "Bytes of JSON the entries in the node's memory were parsed from (at most REPLAY_MEMORY_BYTES).",
      registers,
      collect() {
        this.set(events.replayMemoryHeldBytes);
      },
    });
    new Counter({
      name: 'blackhole_replay_reads_total',
      help: 'Reads of the replay log started; each serves every resume it can.',
      registers,
      collect() {
        mirror(this, [{ labels: {}, value: events.replayReads }]);
      },
    });
    new Gauge({
      name: 'blackhole_replays',
      help: 'Reads of the replay log running (at most REPLAY_CONCURRENCY), and resumes waiting for one.',
      labelNames: ['state'],
      registers,
      collect() {
        this.reset();
        this.set({ state: 'reading' }, events.replaysReading);
        this.set({ state: 'waiting' }, events.replaysWaiting);
      },
    });
    new SnapshotHistogram(
      'blackhole_delivery_latency_seconds',
      "Seconds from the Timestamp Kazoo put in the message to its hand-over to a client's socket, " +
        'per session; messages without a Timestamp are not counted.',
      this.registry,
      () => events.deliveryLatency.snapshot(),
    );

    new Counter({
      name: 'blackhole_crossbar_requests_total',
      help: 'Requests to Crossbar, by endpoint and outcome (status class, timeout or unreachable).',
      labelNames: ['endpoint', 'outcome'],
      registers,
      collect() {
        mirror(
          this,
          crossbar.counts().map(({ endpoint, outcome, count }) => ({
            labels: { endpoint, outcome },
            value: count,
          })),
        );
      },
    });
    new SnapshotHistogram(
      'blackhole_crossbar_request_duration_seconds',
      'Seconds from sending a request to Crossbar to its answer or failure.',
      this.registry,
      () => crossbar.duration.snapshot(),
    );
    new Counter({
      name: 'blackhole_auth_cache_total',
      help: 'Token and account lookups, by whether the cache answered them (hit) or Crossbar (miss).',
      labelNames: ['result'],
      registers,
      collect() {
        const { hits, misses } = authCache.cacheCounts();
        mirror(this, [
          { labels: { result: 'hit' }, value: hits },
          { labels: { result: 'miss' }, value: misses },
        ]);
      },
    });

    new Gauge({
      name: 'blackhole_broker_connected',
      help: '1 while the node is connected to RabbitMQ.',
      registers,
      collect() {
        this.set(broker.status().connected ? 1 : 0);
      },
    });
    new Gauge({
      name: 'blackhole_broker_consuming',
      help: '1 while every exchange is consumed (what /health answers 200 for).',
      registers,
      collect() {
        this.set(broker.status().consuming ? 1 : 0);
      },
    });
    new Gauge({
      name: 'blackhole_broker_bound_keys',
      help: 'Routing keys held by subscriptions.',
      registers,
      collect() {
        this.set(broker.status().bound_keys);
      },
    });
    new Gauge({
      name: 'blackhole_broker_unbound_keys',
      help: 'Routing keys held by subscriptions that are not bound on the broker right now.',
      registers,
      collect() {
        this.set(broker.status().unbound_key_count);
      },
    });

    // process_* and nodejs_*, event-loop lag (nodejs_eventloop_lag_*) among them.
    collectDefaultMetrics({ register: this.registry });
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  metrics(): Promise<string> {
    return this.registry.metrics();
  }
}

/** The application's registry, wired to its gateways, core, broker and auth. */
@Injectable()
export class AppMetricsRegistry extends MetricsRegistry {
  constructor(
    socketIo: SocketIoGateway,
    legacy: LegacySocketIoServer,
    ws: WsGateway,
    subscriptions: SubscriptionRegistry,
    events: EventStats,
    broker: AmqpHealth,
    crossbar: CrossbarClient,
    auth: AuthService,
  ) {
    super({
      transports: {
        'socket.io': () => socketIo.load(),
        'socket.io-0.9': () => legacy.load(),
        'kazoo-ws': () => ws.load(),
      },
      subscriptions,
      events,
      broker,
      crossbar: crossbar.stats,
      authCache: auth,
    });
  }
}
