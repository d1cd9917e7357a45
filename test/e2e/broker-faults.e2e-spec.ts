import type { ExchangeHealth } from '../../src/amqp/amqp-health';
import { KazooPublisher, brokerBindings } from '../support/amqp';
import { BrokerNode } from '../support/broker-node';
import { EventClient } from '../support/clients';
import { documentEvent } from '../support/document-events';
import { FakeCrossbar } from '../support/fake-crossbar';
import { callEvent } from '../support/kazoo-events';
import { startTestGateway, type TestGateway } from '../support/start-app';
import { TcpGate } from '../support/tcp-gate';
import { waitUntil } from '../support/wait';

// Deletes exchanges and queues and changes permissions: runs on a RabbitMQ node of its own,
// one vhost per scenario, never on the shared broker.
jest.setTimeout(90000);

const CREATE = 'call.CHANNEL_CREATE.*';

type Json = Record<string, unknown>;

interface Tenant {
  readonly accountId: string;
  readonly token: string;
  readonly client: EventClient;
}

interface Scenario {
  readonly vhost: string;
  readonly gateway: TestGateway;
  readonly publisher: KazooPublisher;
  tenant(): Promise<Tenant>;
  exchange(name: string): Promise<ExchangeHealth>;
  bindings(): Promise<string[]>;
  close(): Promise<void>;
}

let node: BrokerNode;
let crossbar: FakeCrossbar;

beforeAll(async () => {
  [node, crossbar] = await Promise.all([BrokerNode.start(), FakeCrossbar.start()]);
});

afterAll(async () => {
  await crossbar?.stop();
  await node?.stop();
});

async function scenario(
  prefix: string,
  options: {
    env?: Record<string, string>;
    user?: { name: string; password: string };
    before?: (vhost: string) => Promise<void>;
    /** A relay between the gateway and the node, to stall or cut the gateway's connection. */
    gate?: TcpGate;
  } = {},
): Promise<Scenario> {
  const vhost = await node.addVhost(prefix);
  await options.before?.(vhost);
  const direct = options.user
    ? node.url(vhost, options.user.name, options.user.password)
    : node.url(vhost);
  const url = options.gate ? direct.replace(`:${node.port}/`, `:${options.gate.port}/`) : direct;
  const gateway = await startTestGateway({
    CROSSBAR_URL: crossbar.url,
    AMQP_URL: url,
    AMQP_RECONNECT_S: '1',
    ...options.env,
  });
  const publisher = await KazooPublisher.connect(node.url(vhost));
  const clients: EventClient[] = [];
  await gateway.consuming();
  return {
    vhost,
    gateway,
    publisher,
    async tenant() {
      const accountId = crossbar.addAccount();
      const client = await EventClient.connect('v4', gateway.url);
      clients.push(client);
      return { accountId, token: crossbar.issueToken(accountId), client };
    },
    async exchange(name) {
      const health = await gateway.health();
      return health.body.amqp.exchanges.find((e) => e.exchange === name) as ExchangeHealth;
    },
    async bindings() {
      const rows = await brokerBindings(gateway.queuePrefix, {
        ctl: (...a) => node.ctl(...a),
        vhost,
      });
      return rows.map((row) => `${row.source} ${row.routingKey}`);
    },
    async close() {
      clients.forEach((client) => client.close());
      await publisher.close();
      await gateway.close();
      await node.ctl('delete_vhost', vhost);
    },
  };
}

async function subscribe(tenant: Tenant, binding: string): Promise<void> {
  const ack = await tenant.client.subscribe(tenant.token, tenant.accountId, binding);
  expect(ack).toEqual(expect.objectContaining({ status: 'success' }));
}

function callIdOf(payload: unknown): unknown {
  return (payload as Json)['Call-ID'];
}

function accountOf(payload: unknown): unknown {
  return ((payload as Json)['Custom-Channel-Vars'] as Json)['Account-ID'];
}

/**
 * `owner` receives its call event; `other` (same binding, another account) receives its own
 * marker, published after the owner's event, and nothing of the owner's.
 */
async function deliversOnlyToItsAccount(
  publish: (routingKey: string, body: Json) => Promise<void>,
  owner: Tenant,
  other: Tenant,
  label: string,
): Promise<void> {
  const own = callEvent('CHANNEL_CREATE', owner.accountId, `${label}-own`);
  const marker = callEvent('CHANNEL_CREATE', other.accountId, `${label}-marker`);
  await publish(own.routingKey, own.body);
  await publish(marker.routingKey, marker.body);
  await owner.client.waitFor('CHANNEL_CREATE', (p) => callIdOf(p) === `${label}-own`);
  await other.client.waitFor('CHANNEL_CREATE', (p) => callIdOf(p) === `${label}-marker`);
  expect(other.client.named('CHANNEL_CREATE').map(accountOf)).not.toContain(owner.accountId);
  expect(owner.client.named('CHANNEL_CREATE').map(accountOf)).not.toContain(other.accountId);
}

describe('an exchange declared with other flags before the gateway starts', () => {
  let s: Scenario;

  beforeAll(async () => {
    s = await scenario('other-flags', {
      before: async (vhost) => {
        const admin = await node.admin(vhost);
        const channel = await admin.channel();
        await channel.assertExchange('callevt', 'topic', { durable: true });
        await admin.close();
      },
    });
  });
  afterAll(() => s.close());

  it('is used as it is: subscriptions bind, events flow, /health says how the exchange is used', async () => {
    // The node is healthy once it consumes; how the exchange is used is known a moment later,
    // when its declaration (refused, then checked) has come back.
    const callevt = await waitUntil('how callevt is used to be known', async () => {
      const exchange = await s.exchange('callevt');
      return exchange.declaration === undefined ? undefined : exchange;
    });
    expect(callevt).toEqual(expect.objectContaining({ consuming: true, declaration: 'existing' }));
    const a = await s.tenant();
    const b = await s.tenant();
    await subscribe(a, CREATE);
    await subscribe(b, CREATE);
    expect(await s.bindings()).toContain(`callevt ${CREATE}`);

    // Declaring with Kazoo's flags would fail here, so publish to the exchange as it is.
    const publish = (routingKey: string, body: Json) =>
      s.publisher.publishRaw('callevt', routingKey, Buffer.from(JSON.stringify(body)));
    await deliversOnlyToItsAccount(publish, a, b, 'flags');

    const health = await s.gateway.health();
    expect(health.status).toBe(200);
    expect(health.body.amqp.unbound_key_count).toBe(0);
  });
});

describe('an exchange deleted while the gateway runs', () => {
  it('is declared again when a new subscription finds it missing; existing subscriptions receive again', async () => {
    const s = await scenario('deleted-bind', { env: { AMQP_EXCHANGE_CHECK_S: '0' } });
    try {
      const a = await s.tenant();
      const b = await s.tenant();
      await subscribe(a, CREATE);
      await subscribe(b, CREATE);
      const publish = (routingKey: string, body: Json) =>
        s.publisher.publish('callevt', routingKey, body);
      await deliversOnlyToItsAccount(publish, a, b, 'before');

      const admin = await node.admin(s.vhost);
      await (await admin.channel()).deleteExchange('callevt');
      await admin.close();
      expect(await s.bindings()).toEqual([]);

      // A new key: its bind meets the missing exchange, which is declared again, and every
      // key of the exchange is bound anew.
      await subscribe(a, 'call.CHANNEL_ANSWER.*');
      await waitUntil('the old key to be bound again', async () =>
        (await s.bindings()).includes(`callevt ${CREATE}`) ? true : undefined,
      );
      expect((await s.exchange('callevt')).redeclarations).toBe(1);
      await deliversOnlyToItsAccount(publish, a, b, 'after');
    } finally {
      await s.close();
    }
  });

  it('is found missing by the periodic check and declared again with its keys', async () => {
    const s = await scenario('deleted-check', { env: { AMQP_EXCHANGE_CHECK_S: '1' } });
    try {
      const a = await s.tenant();
      const b = await s.tenant();
      await subscribe(a, CREATE);
      await subscribe(b, CREATE);

      const admin = await node.admin(s.vhost);
      await (await admin.channel()).deleteExchange('callevt');
      await admin.close();

      await waitUntil('the exchange to be declared again and the key bound', async () =>
        (await s.exchange('callevt')).redeclarations === 1 &&
        (await s.bindings()).includes(`callevt ${CREATE}`)
          ? true
          : undefined,
      );
      const publish = (routingKey: string, body: Json) =>
        s.publisher.publish('callevt', routingKey, body);
      await deliversOnlyToItsAccount(publish, a, b, 'checked');
      expect((await s.gateway.health()).status).toBe(200);
    } finally {
      await s.close();
    }
  });
});

describe("the gateway's queue deleted while it runs", () => {
  it('turns /health 503 naming the exchange, then consumes again with its keys for the same clients', async () => {
    const s = await scenario('queue-deleted');
    try {
      const a = await s.tenant();
      const b = await s.tenant();
      await subscribe(a, CREATE);
      await subscribe(b, CREATE);
      const publish = (routingKey: string, body: Json) =>
        s.publisher.publish('callevt', routingKey, body);
      await deliversOnlyToItsAccount(publish, a, b, 'before');

      // Keep the queue from being declared again for a while, so the outage can be observed.
      await node.ctl('set_permissions', '-p', s.vhost, 'guest', '^(?!blackhole\\.).*', '.*', '.*');
      await node.ctl('delete_queue', '-p', s.vhost, `${s.gateway.queuePrefix}callevt`);

      const down = await waitUntil('health to turn 503', async () => {
        const health = await s.gateway.health();
        return health.status === 503 ? health : undefined;
      });
      expect(down.body.status).toBe('unavailable');
      expect(down.body.amqp.exchanges).toContainEqual(
        expect.objectContaining({
          exchange: 'callevt',
          consuming: false,
          reason: expect.stringMatching(/cancelled|ACCESS_REFUSED/) as unknown,
        }),
      );
      expect(down.body.amqp.exchanges.filter((e) => !e.consuming)).toHaveLength(1);
      expect(down.body.amqp.unbound_keys).toContainEqual(
        expect.objectContaining({ exchange: 'callevt', routing_key: CREATE }),
      );

      await node.ctl('set_permissions', '-p', s.vhost, 'guest', '.*', '.*', '.*');
      await waitUntil('health to turn 200 again', async () =>
        (await s.gateway.health()).status === 200 ? true : undefined,
      );
      expect(await s.bindings()).toContain(`callevt ${CREATE}`);
      expect((await s.exchange('callevt')).recoveries).toBe(1);
      expect(a.client.isDisconnected).toBe(false);
      await deliversOnlyToItsAccount(publish, a, b, 'after');
    } finally {
      await s.close();
    }
  });
});

describe('a bind the broker refuses', () => {
  it('answers broker_refused, leaves nothing bound, and the next subscription of another family works', async () => {
    const user = { name: 'bh-no-callevt', password: 'secret' };
    const s = await scenario('refused', {
      user,
      before: async (vhost) => {
        await node.ctl('add_user', user.name, user.password).catch(() => '');
        // Everything but reading from callevt, which queue.bind needs.
        await node.ctl('set_permissions', '-p', vhost, user.name, '.*', '.*', '^(?!callevt$).*');
      },
    });
    try {
      const a = await s.tenant();
      const b = await s.tenant();
      const refused = await a.client.subscribe(a.token, a.accountId, CREATE);
      expect(refused).toEqual({
        status: 'error',
        data: expect.objectContaining({
          code: 'broker_refused',
          temporary: false,
          errors: [expect.stringMatching(/call\.CHANNEL_CREATE\.\*.*callevt.*ACCESS_REFUSED/)],
        }) as unknown,
      });
      expect(s.gateway.binder.boundKeys()).toEqual([]);
      expect(await s.bindings()).toEqual([]);

      const binding = 'object.doc_created.user';
      await subscribe(a, binding);
      await subscribe(b, binding);
      const own = documentEvent('doc_created', 'user', a.accountId, { id: 'a-doc' });
      const marker = documentEvent('doc_created', 'user', b.accountId, { id: 'b-marker' });
      await s.publisher.publish('configuration', own.routingKey, own.body);
      await s.publisher.publish('configuration', marker.routingKey, marker.body);
      expect((await a.client.waitFor('doc_created_user')).payload).toEqual(own.body);
      await b.client.waitFor('doc_created_user', (p) => (p as Json).ID === 'b-marker');
      expect(b.client.named('doc_created_user')).toEqual([marker.body]);

      const health = await s.gateway.health();
      expect(health.status).toBe(200);
      expect(health.body.amqp.unbound_key_count).toBe(0);
    } finally {
      await s.close();
    }
  });
});

describe('subscribe acknowledgements while the broker is slow with other keys', () => {
  it('answers a subscription whose keys are bound without waiting for broker work on other keys', async () => {
    const gate = await TcpGate.start({ host: '127.0.0.1', port: node.port });
    gate.openGate();
    const s = await scenario('frozen', { gate });
    try {
      const holder = await s.tenant();
      await subscribe(holder, CREATE);
      const measured = await s.tenant();
      const waiting = await s.tenant();

      // From now on the broker hears nothing from the gateway: a new key's bind cannot finish.
      gate.freeze();
      const pending = waiting.client.subscribe(
        waiting.token,
        waiting.accountId,
        'object.doc_created.user',
      );
      let answered = false;
      const settled = pending.then((ack) => {
        answered = true;
        return ack;
      });
      // A key that is bound already needs no broker operation: the ack comes anyway.
      const ack = await measured.client.subscribe(measured.token, measured.accountId, CREATE);
      expect(ack).toEqual({ status: 'success', data: { subscribed: [CREATE] } });
      expect(answered).toBe(false);

      gate.thaw();
      expect(await settled).toEqual({
        status: 'success',
        data: { subscribed: ['object.doc_created.user'] },
      });
      const publish = (routingKey: string, body: Json) =>
        s.publisher.publish('callevt', routingKey, body);
      await deliversOnlyToItsAccount(publish, measured, holder, 'frozen');
    } finally {
      gate.thaw();
      await s.close();
      await gate.stop();
    }
  });
});
