import { randomBytes } from 'node:crypto';
import { createGzip } from 'node:zlib';
import { defaultFeatures } from '../../src/features';
import { PRESENCE_EXCHANGE } from '../../src/features/presence/presence.family';
import { PresenceModule } from '../../src/features/presence/presence.module';
import type { EventClient } from '../support/clients';
import { presenceEvent } from '../support/presence-events';
import { Stack } from '../support/stack';

type Json = Record<string, unknown>;

// Presence keys name the realm, and these realms are this suite's own: nobody else's node on the
// shared broker is bound to what is published here.
const features = defaultFeatures.includes(PresenceModule)
  ? defaultFeatures
  : [...defaultFeatures, PresenceModule];

const MAX_BYTES = 1024 * 1024;
const MiB = 1024 * 1024;

/** A gzip stream of `inflatedBytes` spaces, built a chunk at a time so the test stays small. */
async function gzipBomb(inflatedBytes: number): Promise<Buffer> {
  const gzip = createGzip({ level: 9 });
  const parts: Buffer[] = [];
  gzip.on('data', (part: Buffer) => parts.push(part));
  const done = new Promise<void>((resolve, reject) => {
    gzip.on('end', resolve);
    gzip.on('error', reject);
  });
  const chunk = Buffer.alloc(MiB, ' ');
  for (let written = 0; written < inflatedBytes; written += chunk.length) {
    if (!gzip.write(chunk)) await new Promise((resolve) => gzip.once('drain', resolve));
  }
  gzip.end();
  await done;
  return Buffer.concat(parts);
}

interface Tenant {
  readonly accountId: string;
  readonly token: string;
  readonly realm: string;
}

describe('bounded AMQP input', () => {
  let stack: Stack;
  let owner: Tenant;
  let neighbour: Tenant;
  let client: EventClient;
  let bystander: EventClient;
  let bomb: Buffer;

  const oversizeCount = async (): Promise<number> =>
    ((await stack.gateway.health()).body as unknown as { events: { oversize: number } }).events
      .oversize;

  const tenant = (): Tenant => {
    const realm = `limits-${randomBytes(6).toString('hex')}.sip.example.com`;
    const accountId = stack.crossbar.addAccount(undefined, undefined, { realm });
    return { accountId, token: stack.crossbar.issueToken(accountId), realm };
  };

  const callIdOf = (payload: unknown): unknown => (payload as Json)['Call-ID'];

  beforeAll(async () => {
    stack = await Stack.start({
      features,
      env: { AMQP_MAX_MESSAGE_BYTES: String(MAX_BYTES) },
    });
    owner = tenant();
    neighbour = tenant();
    client = await stack.connect('v4');
    bystander = await stack.connect('v4');
    for (const [socket, who] of [
      [client, owner],
      [bystander, neighbour],
    ] as const) {
      const ack = await socket.subscribe(who.token, who.accountId, 'presence.dialog.*');
      expect(ack.status).toBe('success');
    }
    bomb = await gzipBomb(1024 * MiB);
  });

  afterAll(async () => {
    await stack.close();
  });

  it('drops a gzip bomb and an oversize message unparsed, counts them, and keeps delivering', async () => {
    // The bomb is small on the wire: only inflating it would reveal its size.
    expect(bomb.length).toBeLessThan(MAX_BYTES);
    const before = await oversizeCount();
    const rssBefore = process.memoryUsage().rss;

    await stack.publisher.publishRaw(
      PRESENCE_EXCHANGE,
      presenceEvent('dialog', owner.realm, 'bomb').routingKey,
      bomb,
      { contentEncoding: 'gzip' },
    );
    const big = presenceEvent('dialog', owner.realm, 'big');
    const padded = Buffer.from(JSON.stringify({ ...big.body, Padding: 'x'.repeat(2 * MAX_BYTES) }));
    await stack.publisher.publishRaw(PRESENCE_EXCHANGE, big.routingKey, padded);
    const good = presenceEvent('dialog', owner.realm, 'after-oversize');
    await stack.publisher.publish(PRESENCE_EXCHANGE, good.routingKey, good.body);

    // One queue, in order: once the good event is in, both oversize messages were handled.
    expect((await client.waitFor('dialog_update')).payload).toEqual(good.body);
    const rssAfter = process.memoryUsage().rss;
    expect(await oversizeCount()).toBe(before + 2);
    // Inflating the bomb would take 1 GiB; bounded, it costs at most the limit.
    expect(rssAfter - rssBefore).toBeLessThan(200 * MiB);
    expect(client.named('dialog_update').map(callIdOf)).toEqual(['after-oversize']);

    const marker = presenceEvent('dialog', neighbour.realm, 'neighbour-marker');
    await stack.publisher.publish(PRESENCE_EXCHANGE, marker.routingKey, marker.body);
    await bystander.waitFor('dialog_update', (p) => callIdOf(p) === 'neighbour-marker');
    expect(bystander.named('dialog_update').map(callIdOf)).toEqual(['neighbour-marker']);
    expect((await stack.gateway.health()).status).toBe(200);
  });

  it('drops the oversize messages for good: they are not redelivered', async () => {
    const before = await oversizeCount();
    const next = presenceEvent('dialog', owner.realm, 'second-round');
    await stack.publisher.publish(PRESENCE_EXCHANGE, next.routingKey, next.body);
    await client.waitFor('dialog_update', (p) => callIdOf(p) === 'second-round');
    expect(await oversizeCount()).toBe(before);
  });
});
