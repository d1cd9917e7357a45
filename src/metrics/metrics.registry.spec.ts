import { parsePrometheusText, sampleValue, type Sample } from '../../test/support/prometheus-text';
import type { AmqpStatus } from '../amqp/amqp-health';
import { CrossbarStats } from '../auth/crossbar-stats';
import { EventStats, UNKNOWN_FAMILY } from '../core/events/event-stats';
import type { TransportLoad, TransportProtocol } from '../gateways/transport-load';
import { bearerMatches } from './metrics.controller';
import { MetricsRegistry } from './metrics.registry';

const brokerStatus = (overrides: Partial<AmqpStatus> = {}): AmqpStatus => ({
  connected: true,
  consuming: true,
  consumers: 2,
  bound_keys: 7,
  exchanges: [],
  unbound_key_count: 1,
  unbound_keys: [],
  ...overrides,
});

describe('MetricsRegistry', () => {
  let loads: Record<TransportProtocol, TransportLoad>;
  let events: EventStats;
  let crossbar: CrossbarStats;
  let status: AmqpStatus;
  let cache: { hits: number; misses: number };
  let counts: { sessionCount: number; subscriptionCount: number };
  let metrics: MetricsRegistry;

  beforeEach(() => {
    loads = {
      'socket.io': { connections: 3, outboundBytes: 100 },
      'socket.io-0.9': { connections: 1, outboundBytes: 0 },
      'kazoo-ws': { connections: 2, outboundBytes: 42 },
    };
    events = new EventStats();
    crossbar = new CrossbarStats();
    status = brokerStatus();
    cache = { hits: 5, misses: 2 };
    counts = { sessionCount: 4, subscriptionCount: 9 };
    metrics = new MetricsRegistry({
      transports: {
        'socket.io': () => loads['socket.io'],
        'socket.io-0.9': () => loads['socket.io-0.9'],
        'kazoo-ws': () => loads['kazoo-ws'],
      },
      subscriptions: {
        get sessionCount() {
          return counts.sessionCount;
        },
        get subscriptionCount() {
          return counts.subscriptionCount;
        },
      },
      events,
      broker: { status: () => status },
      crossbar,
      authCache: { cacheCounts: () => cache },
    });
  });

  async function scrape(): Promise<{ samples: Sample[]; types: Map<string, string> }> {
    return parsePrometheusText(await metrics.metrics());
  }

  it('reads connections, unsent bytes and subscriptions when scraped', async () => {
    let { samples } = await scrape();
    expect(sampleValue(samples, 'blackhole_connections', { protocol: 'socket.io' })).toBe(3);
    expect(sampleValue(samples, 'blackhole_connections', { protocol: 'socket.io-0.9' })).toBe(1);
    expect(sampleValue(samples, 'blackhole_connections', { protocol: 'kazoo-ws' })).toBe(2);
    expect(
      sampleValue(samples, 'blackhole_outbound_buffered_bytes', { protocol: 'kazoo-ws' }),
    ).toBe(42);
    expect(sampleValue(samples, 'blackhole_subscriptions')).toBe(9);
    expect(sampleValue(samples, 'blackhole_subscribed_sessions')).toBe(4);

    loads['kazoo-ws'] = { connections: 0, outboundBytes: 0 };
    counts.subscriptionCount = 1;
    ({ samples } = await scrape());
    expect(sampleValue(samples, 'blackhole_connections', { protocol: 'kazoo-ws' })).toBe(0);
    expect(sampleValue(samples, 'blackhole_subscriptions')).toBe(1);
  });

  it('mirrors the event counters by exchange, family and reason, as counters', async () => {
    events.countReceived('callevt');
    events.countReceived('callevt');
    events.countReceived('configuration');
    events.countDelivered('call', 5);
    events.countDropped('without_account', 'call');
    events.countDropped('oversize', UNKNOWN_FAMILY, 2);
    events.slowConsumerDisconnects = 3;

    const { samples, types } = await scrape();
    expect(sampleValue(samples, 'blackhole_events_received_total', { exchange: 'callevt' })).toBe(
      2,
    );
    expect(
      sampleValue(samples, 'blackhole_events_received_total', { exchange: 'configuration' }),
    ).toBe(1);
    expect(sampleValue(samples, 'blackhole_events_delivered_total', { family: 'call' })).toBe(5);
    expect(
      sampleValue(samples, 'blackhole_events_dropped_total', {
        reason: 'without_account',
        family: 'call',
      }),
    ).toBe(1);
    expect(
      sampleValue(samples, 'blackhole_events_dropped_total', {
        reason: 'oversize',
        family: 'unknown',
      }),
    ).toBe(2);
    expect(sampleValue(samples, 'blackhole_slow_consumer_disconnects_total')).toBe(3);
    expect(types.get('blackhole_events_dropped_total')).toBe('counter');

    // A second scrape reports totals, not totals added twice.
    events.countDelivered('call', 1);
    const again = (await scrape()).samples;
    expect(sampleValue(again, 'blackhole_events_delivered_total', { family: 'call' })).toBe(6);
    expect(sampleValue(again, 'blackhole_events_received_total', { exchange: 'callevt' })).toBe(2);
  });

  it('exposes the delivery latency as a cumulative histogram', async () => {
    events.deliveryLatency.observe(0.003, 4);
    events.deliveryLatency.observe(1.5);
    events.deliveryLatency.observe(120);

    const { samples, types } = await scrape();
    const bucket = (le: string): number =>
      sampleValue(samples, 'blackhole_delivery_latency_seconds_bucket', { le });
    expect(types.get('blackhole_delivery_latency_seconds')).toBe('histogram');
    expect(bucket('0.005')).toBe(4);
    expect(bucket('1')).toBe(4);
    expect(bucket('2')).toBe(5);
    expect(bucket('60')).toBe(5);
    expect(bucket('+Inf')).toBe(6);
    expect(sampleValue(samples, 'blackhole_delivery_latency_seconds_count')).toBe(6);
    expect(sampleValue(samples, 'blackhole_delivery_latency_seconds_sum')).toBeCloseTo(
      0.012 + 1.5 + 120,
    );
  });

  it('reports Crossbar requests by endpoint and outcome, their duration and the auth cache', async () => {
    const started = performance.now();
    crossbar.record('/token_auth', 200, started);
    crossbar.record('/accounts/4b8c6fec4b2597882c0390202d195419', 403, started);
    crossbar.record('/accounts/fedcba9876543210fedcba9876543210', 503, started);
    crossbar.record('/token_auth', 'timeout', started);

    const { samples } = await scrape();
    const requests = samples.filter((s) => s.name === 'blackhole_crossbar_requests_total');
    expect(requests.map((s) => [s.labels.endpoint, s.labels.outcome, s.value])).toEqual([
      ['token_auth', '2xx', 1],
      ['accounts', '4xx', 1],
      ['accounts', '5xx', 1],
      ['token_auth', 'timeout', 1],
    ]);
    expect(sampleValue(samples, 'blackhole_crossbar_request_duration_seconds_count')).toBe(4);
    expect(sampleValue(samples, 'blackhole_auth_cache_total', { result: 'hit' })).toBe(5);
    expect(sampleValue(samples, 'blackhole_auth_cache_total', { result: 'miss' })).toBe(2);
  });

  it('reports the broker state', async () => {
    let { samples } = await scrape();
    expect(sampleValue(samples, 'blackhole_broker_connected')).toBe(1);
    expect(sampleValue(samples, 'blackhole_broker_consuming')).toBe(1);
    expect(sampleValue(samples, 'blackhole_broker_bound_keys')).toBe(7);
    expect(sampleValue(samples, 'blackhole_broker_unbound_keys')).toBe(1);

    status = brokerStatus({ connected: false, consuming: false, bound_keys: 7 });
    ({ samples } = await scrape());
    expect(sampleValue(samples, 'blackhole_broker_connected')).toBe(0);
    expect(sampleValue(samples, 'blackhole_broker_consuming')).toBe(0);
  });

  it("includes Node's process metrics, event-loop lag among them", async () => {
    const { types } = await scrape();
    expect(types.get('nodejs_eventloop_lag_seconds')).toBe('gauge');
    expect(types.has('process_resident_memory_bytes')).toBe(true);
  });

  it('keeps its metrics to itself: two registries in one process do not collide', async () => {
    const other = new MetricsRegistry({
      transports: {
        'socket.io': () => ({ connections: 7, outboundBytes: 0 }),
        'socket.io-0.9': () => ({ connections: 0, outboundBytes: 0 }),
        'kazoo-ws': () => ({ connections: 0, outboundBytes: 0 }),
      },
      subscriptions: { sessionCount: 0, subscriptionCount: 0 },
      events: new EventStats(),
      broker: { status: () => status },
      crossbar: new CrossbarStats(),
      authCache: { cacheCounts: () => ({ hits: 0, misses: 0 }) },
    });
    const mine = (await scrape()).samples;
    const theirs = parsePrometheusText(await other.metrics()).samples;
    expect(sampleValue(mine, 'blackhole_connections', { protocol: 'socket.io' })).toBe(3);
    expect(sampleValue(theirs, 'blackhole_connections', { protocol: 'socket.io' })).toBe(7);
  });
});

describe('bearerMatches', () => {
  const token = 'scrape-token-0123456789';

  it.each([
    [`Bearer ${token}`, true],
    [`bearer ${token}`, true],
    [`Bearer ${token}x`, false],
    [`Bearer ${token.slice(1)}`, false],
    [token, false],
    [`Basic ${token}`, false],
    ['Bearer ', false],
    [undefined, false],
  ])('%p → %p', (authorization, expected) => {
    expect(bearerMatches(authorization, token)).toBe(expected);
  });
});
