import { randomBytes } from 'node:crypto';
import { documentEvent } from '../support/document-events';
import { callEvent } from '../support/kazoo-events';
import { LegacyClient } from '../support/legacy-client';
import { parsePrometheusText, sampleValue, type Sample } from '../support/prometheus-text';
import { Stack } from '../support/stack';
import { waitUntil } from '../support/wait';

const METRICS_TOKEN = 'metrics-e2e-token-0123456789';
const OBJECT_BINDING = 'object.doc_created.user';

/** Kazoo's `Timestamp` for now: Gregorian seconds (whole, as Kazoo sends them). */
const kazooNow = (): number => Math.floor(Date.now() / 1000) + 62167219200;

describe('GET /metrics', () => {
  let stack: Stack;
  const legacyClients: LegacyClient[] = [];

  beforeAll(async () => {
    stack = await Stack.start({ env: { METRICS_TOKEN } });
  });

  afterEach(() => {
    legacyClients.splice(0).forEach((client) => client.close());
    stack.closeClients();
  });

  afterAll(async () => {
    await stack.close();
  });

  async function scrape(): Promise<Sample[]> {
    const response = await fetch(`${stack.gateway.url}/metrics`, {
      headers: { Authorization: `Bearer ${METRICS_TOKEN}` },
    });
    expect(response.status).toBe(200);
    return parsePrometheusText(await response.text()).samples;
  }

  it('answers 401 without the bearer token or with another one, and text/plain with it', async () => {
    const url = `${stack.gateway.url}/metrics`;
    const without = await fetch(url);
    expect(without.status).toBe(401);
    expect(without.headers.get('www-authenticate')).toBe('Bearer realm="metrics"');
    expect(await without.text()).not.toContain('blackhole_');
    for (const authorization of [
      `Bearer ${METRICS_TOKEN}x`,
      `Bearer ${METRICS_TOKEN.slice(0, -1)}`,
      `Basic ${METRICS_TOKEN}`,
      METRICS_TOKEN,
    ]) {
      const refused = await fetch(url, { headers: { Authorization: authorization } });
      expect(refused.status).toBe(401);
      expect(await refused.text()).not.toContain('blackhole_');
    }
    const allowed = await fetch(url, { headers: { Authorization: `Bearer ${METRICS_TOKEN}` } });
    expect(allowed.status).toBe(200);
    expect(allowed.headers.get('content-type')).toMatch(/^text\/plain;.*version=0\.0\.4/);
    const { types } = parsePrometheusText(await allowed.text());
    expect(types.get('blackhole_connections')).toBe('gauge');
    expect(types.get('blackhole_delivery_latency_seconds')).toBe('histogram');
    expect(types.get('nodejs_eventloop_lag_seconds')).toBe('gauge');
  });

  /**
   * Document events are addressed to their account's database in the routing key, so this
   * node's queue gets only the ones published here, even while other suites publish on the
   * same broker: their counts move by exactly what this test does. Call events (on `callevt`,
   * bound for every account) are checked where only this node's clients count: deliveries.
   */
  it('counts connections, subscriptions, and events received, delivered and dropped by what was done', async () => {
    const mine = stack.account();
    const other = stack.account();
    const callId = `metrics${randomBytes(8).toString('hex')}`;
    const callBinding = `call.CHANNEL_CREATE.${callId}`;
    const hitsBefore = stack.crossbar.hitsOf('/v2/token_auth');
    const before = await scrape();

    const io = await stack.connect('v4');
    expect(
      (await io.subscribe(mine.token, mine.accountId, [OBJECT_BINDING, callBinding])).status,
    ).toBe('success');
    const legacy = await LegacyClient.connect(stack.gateway.url, 'websocket');
    legacyClients.push(legacy);
    for (const binding of [OBJECT_BINDING, callBinding]) {
      const ack = await legacy.emit(
        'subscribe',
        { account_id: mine.accountId, auth_token: mine.token, binding },
        true,
      );
      expect(ack).toEqual([expect.objectContaining({ status: 'success' })]);
    }
    const ws = await stack.connectWs();
    expect(
      (await ws.subscribe(mine.token, mine.accountId, [OBJECT_BINDING, callBinding])).status,
    ).toBe('success');
    const bystander = await stack.connectWs();
    expect((await bystander.subscribe(other.token, other.accountId, OBJECT_BINDING)).status).toBe(
      'success',
    );

    const connected = await scrape();
    const delta = (after: Sample[], name: string, labels: Record<string, string> = {}): number =>
      sampleValue(after, name, labels) - sampleValue(before, name, labels);
    expect(sampleValue(connected, 'blackhole_connections', { protocol: 'socket.io' })).toBe(1);
    expect(sampleValue(connected, 'blackhole_connections', { protocol: 'socket.io-0.9' })).toBe(1);
    expect(sampleValue(connected, 'blackhole_connections', { protocol: 'kazoo-ws' })).toBe(2);
    expect(sampleValue(connected, 'blackhole_subscriptions')).toBe(7);
    expect(sampleValue(connected, 'blackhole_subscribed_sessions')).toBe(4);
    for (const protocol of ['socket.io', 'socket.io-0.9', 'kazoo-ws']) {
      expect(
        sampleValue(connected, 'blackhole_outbound_buffered_bytes', { protocol }),
      ).toBeGreaterThanOrEqual(0);
    }
    expect(sampleValue(connected, 'blackhole_broker_connected')).toBe(1);
    expect(sampleValue(connected, 'blackhole_broker_consuming')).toBe(1);
    expect(sampleValue(connected, 'blackhole_broker_bound_keys')).toBe(
      stack.gateway.binder.boundKeys().length,
    );
    // One token check per token; the other subscribes were answered by the cache.
    const tokenChecks = stack.crossbar.hitsOf('/v2/token_auth') - hitsBefore;
    expect(tokenChecks).toBe(2);
    expect(
      delta(connected, 'blackhole_crossbar_requests_total', {
        endpoint: 'token_auth',
        outcome: '2xx',
      }),
    ).toBe(tokenChecks);
    expect(delta(connected, 'blackhole_auth_cache_total', { result: 'miss' })).toBe(2);
    expect(
      delta(connected, 'blackhole_auth_cache_total', { result: 'hit' }),
    ).toBeGreaterThanOrEqual(2);
    expect(delta(connected, 'blackhole_crossbar_request_duration_seconds_count')).toBe(tokenChecks);

    // Two documents (one with Kazoo's Timestamp), one call event with it, and two drops.
    const timed = documentEvent('doc_created', 'user', mine.accountId, { id: 'timed-doc' });
    await stack.publisher.publish('configuration', timed.routingKey, {
      ...timed.body,
      Timestamp: kazooNow(),
    });
    const untimed = documentEvent('doc_created', 'user', mine.accountId, { id: 'untimed-doc' });
    await stack.publisher.publish('configuration', untimed.routingKey, untimed.body);
    const call = callEvent('CHANNEL_CREATE', mine.accountId, callId);
    await stack.publisher.publish('callevt', call.routingKey, {
      ...call.body,
      Timestamp: kazooNow(),
    });
    const malformed = documentEvent('doc_created', 'user', mine.accountId);
    await stack.publisher.publishRaw(
      'configuration',
      malformed.routingKey,
      Buffer.from('not json'),
    );
    // On the account's key, but the document says it lives in a database of no account.
    const unread = documentEvent('doc_created', 'user', mine.accountId);
    await stack.publisher.publish('configuration', unread.routingKey, {
      ...unread.body,
      Database: 'system_config',
    });
    // The last one: once every client has it, everything before it was handled.
    const last = documentEvent('doc_created', 'user', mine.accountId, { id: 'last-doc' });
    await stack.publisher.publish('configuration', last.routingKey, last.body);

    const hasId = (id: string) => (payload: unknown) => (payload as { ID?: unknown }).ID === id;
    await io.waitFor('doc_created_user', hasId('last-doc'), 10_000);
    await legacy.waitFor('doc_created_user', hasId('last-doc'), 10_000);
    await ws.waitForEvent((f) => f.data?.id === 'last-doc', 10_000);
    await io.waitFor('CHANNEL_CREATE', (p) => (p as Record<string, unknown>)['Call-ID'] === callId);
    await legacy.waitFor('CHANNEL_CREATE');
    await ws.waitForEvent((f) => f.data?.call_id === callId);
    expect(io.named('doc_created_user').map((p) => (p as { ID: string }).ID)).toEqual([
      'timed-doc',
      'untimed-doc',
      'last-doc',
    ]);

    const after = await scrape();
    expect(delta(after, 'blackhole_events_received_total', { exchange: 'configuration' })).toBe(5);
    expect(
      delta(after, 'blackhole_events_received_total', { exchange: 'callevt' }),
    ).toBeGreaterThanOrEqual(1);
    expect(delta(after, 'blackhole_events_delivered_total', { family: 'object' })).toBe(3 * 3);
    expect(delta(after, 'blackhole_events_delivered_total', { family: 'call' })).toBe(3);
    expect(
      delta(after, 'blackhole_events_dropped_total', { reason: 'malformed', family: 'unknown' }),
    ).toBe(1);
    expect(
      delta(after, 'blackhole_events_dropped_total', { reason: 'unread', family: 'unknown' }),
    ).toBe(1);
    // Three clients got each of the two timestamped events, within a minute of publishing.
    expect(delta(after, 'blackhole_delivery_latency_seconds_count')).toBe(6);
    expect(delta(after, 'blackhole_delivery_latency_seconds_bucket', { le: '60' })).toBe(6);

    // The other account's client got none of it: its own later event is all it has.
    const marker = documentEvent('doc_created', 'user', other.accountId, { id: 'other-marker' });
    await stack.publisher.publish('configuration', marker.routingKey, marker.body);
    await bystander.waitForEvent((f) => f.data?.id === 'other-marker', 10_000);
    expect(bystander.frames.filter((f) => f.action === 'event').map((f) => f.data?.id)).toEqual([
      'other-marker',
    ]);

    io.close();
    legacy.close();
    ws.close();
    bystander.close();
    await waitUntil('every connection to be gone', async () => {
      const samples = await scrape();
      const open = ['socket.io', 'socket.io-0.9', 'kazoo-ws'].map((protocol) =>
        sampleValue(samples, 'blackhole_connections', { protocol }),
      );
      return open.every((n) => n === 0) && sampleValue(samples, 'blackhole_subscriptions') === 0
        ? true
        : undefined;
    });
  });

  it('counts refused tokens and an unavailable Crossbar by outcome', async () => {
    const who = stack.account();
    const before = await scrape();
    const client = await stack.connectWs();

    stack.crossbar.revoke(who.token);
    expect((await client.subscribe(who.token, who.accountId, OBJECT_BINDING)).status).toBe('error');
    const fresh = stack.account();
    stack.crossbar.setFault({ status: 503 });
    try {
      const refused = await client.subscribe(fresh.token, fresh.accountId, OBJECT_BINDING);
      expect(refused.data).toMatchObject({ temporary: true });
    } finally {
      stack.crossbar.setFault(undefined);
    }

    const after = await scrape();
    const requests = (outcome: string): number =>
      sampleValue(after, 'blackhole_crossbar_requests_total', { endpoint: 'token_auth', outcome }) -
      sampleValue(before, 'blackhole_crossbar_requests_total', { endpoint: 'token_auth', outcome });
    expect(requests('4xx')).toBe(1);
    expect(requests('5xx')).toBe(1);
  });
});

describe('GET /metrics without METRICS_TOKEN', () => {
  let stack: Stack;

  beforeAll(async () => {
    stack = await Stack.start();
  });

  afterAll(async () => {
    await stack.close();
  });

  it('is open', async () => {
    const response = await fetch(`${stack.gateway.url}/metrics`);
    expect(response.status).toBe(200);
    const { samples } = parsePrometheusText(await response.text());
    expect(sampleValue(samples, 'blackhole_broker_consuming')).toBe(1);
  });
});
