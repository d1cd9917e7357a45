import { defaultFeatures } from '../../src/features';
import { SkeletonModule } from '../../src/features/skeleton/skeleton.module';
import { brokerBindings } from '../support/amqp';
import { Stack } from '../support/stack';
import { waitUntil } from '../support/wait';

interface Catalog {
  status: string;
  request_id: string;
  node: string;
  timestamp: string;
  version: string;
  data: Record<string, string[]>;
}

const catalogOf = async (stack: Stack, requestId?: string): Promise<Catalog> => {
  const response = await fetch(`${stack.gateway.url}/v2/websockets`, {
    headers: requestId ? { 'X-Request-ID': requestId } : {},
  });
  expect(response.status).toBe(200);
  return (await response.json()) as Catalog;
};

const skeletonEvent = (event: string, accountId: string, id: string) => ({
  routingKey: `skeleton.${event}.${accountId}.${id}`,
  body: { 'Event-Name': event, 'Account-ID': accountId, ID: id, 'Msg-ID': id },
});

// A third party adds a family the way an operator would: one more module in the feature list,
// nothing changed in src/core.
describe('a third-party family registered next to the built-in ones', () => {
  let stack: Stack;

  beforeAll(async () => {
    stack = await Stack.start({ features: [...defaultFeatures, SkeletonModule] });
  });
  afterEach(() => stack.closeClients());
  afterAll(() => stack.close());

  it('is listed by GET /v2/websockets in the 4.x Crossbar envelope, next to every built-in family', async () => {
    const catalog = await catalogOf(stack, 'req-42');
    expect(catalog).toMatchObject({
      status: 'success',
      request_id: 'req-42',
      version: expect.any(String) as unknown,
    });
    expect(Date.parse(catalog.timestamp)).not.toBeNaN();
    expect(catalog.data.skeleton).toEqual([
      'skeleton.created.{ID}',
      'skeleton.updated.{ID}',
      'skeleton.deleted.{ID}',
    ]);
    expect(catalog.data.call).toContain('call.CHANNEL_CREATE.{CALL_ID}');
    expect(Object.keys(catalog.data).sort()).toEqual([
      'call',
      'conference',
      'fax',
      'object',
      'presence',
      'skeleton',
    ]);
  });

  it("delivers the family's events, never another account's, and releases its bindings", async () => {
    const a = stack.account();
    const b = stack.account();
    const mine = await stack.connect('v2', { watch: ['created', 'updated', 'deleted'] });
    const theirs = await stack.connect('v4');
    expect((await mine.subscribe(a.token, a.accountId, 'skeleton.*.*')).status).toBe('success');
    expect((await theirs.subscribe(b.token, b.accountId, 'skeleton.created.*')).status).toBe(
      'success',
    );

    for (let i = 0; i < 20; i++) {
      const foreign = skeletonEvent('created', b.accountId, `b-${i}`);
      await stack.publisher.publish('skeleton', foreign.routingKey, foreign.body);
    }
    const own = skeletonEvent('updated', a.accountId, 'a-1');
    await stack.publisher.publish('skeleton', own.routingKey, own.body);
    expect((await mine.waitFor('updated')).payload).toEqual(own.body);
    await waitUntil('B to get its 20 events', () =>
      theirs.named('created').length === 20 ? true : undefined,
    );
    expect(mine.named('created')).toEqual([]);

    mine.close();
    theirs.close();
    await waitUntil('the skeleton bindings to go', async () =>
      (await brokerBindings(stack.gateway.queuePrefix)).some(
        (binding) => binding.source === 'skeleton',
      )
        ? undefined
        : true,
    );
  });
});

describe('the same application without the third-party module', () => {
  let stack: Stack;

  beforeAll(async () => {
    stack = await Stack.start();
  });
  afterAll(() => stack.close());

  it('does not list it and refuses its bindings', async () => {
    const catalog = await catalogOf(stack);
    expect(catalog.data.skeleton).toBeUndefined();
    expect(catalog.data.call).toBeDefined();
    const a = stack.account();
    const client = await stack.connect('v4');
    expect(await client.subscribe(a.token, a.accountId, 'skeleton.created.*')).toEqual({
      status: 'error',
      data: {
        errors: ['no available subscriptions to requested binding skeleton.created.*'],
        code: 'invalid_binding',
        temporary: false,
      },
    });
  });
});
