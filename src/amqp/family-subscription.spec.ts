import { gzipSync } from 'node:zlib';
import type { ConsumeMessage } from 'amqplib';
import { UnreadableMessage } from '../core/events/event-ingress';
import {
  DEFAULT_MAX_MESSAGE_BYTES,
  OversizeMessage,
  deserializeKazooMessage,
} from './family-subscription';

const LIMIT = 64 * 1024;

function messageWith(content: Buffer, contentEncoding?: string): ConsumeMessage {
  return {
    content,
    fields: {
      deliveryTag: 1,
      redelivered: false,
      exchange: 'callevt',
      routingKey: 'call.CHANNEL_CREATE.x',
      consumerTag: 'test',
    },
    properties: { contentEncoding, headers: {} },
  } as unknown as ConsumeMessage;
}

const read = (content: Buffer, encoding?: string, limit = LIMIT): unknown =>
  deserializeKazooMessage(content, messageWith(content, encoding), limit);

describe('deserializeKazooMessage', () => {
  const event = { 'Event-Name': 'CHANNEL_CREATE', 'Call-ID': 'abc' };

  it('reads plain and gzipped JSON', () => {
    const plain = Buffer.from(JSON.stringify(event));
    expect(read(plain)).toEqual(event);
    expect(read(gzipSync(plain), 'gzip')).toEqual(event);
  });

  it('reads a body of exactly the limit, raw or inflated', () => {
    const padded = JSON.stringify({ ...event, Pad: '' });
    const body = Buffer.from(
      padded.replace('"Pad":""', `"Pad":"${'x'.repeat(LIMIT - padded.length)}"`),
    );
    expect(body.length).toBe(LIMIT);
    expect(read(body)).toMatchObject(event);
    expect(read(gzipSync(body), 'gzip')).toMatchObject(event);
  });

  it('refuses a raw body over the limit without parsing it', () => {
    const body = Buffer.alloc(LIMIT + 1, ' ');
    const result = read(body);
    expect(result).toBeInstanceOf(OversizeMessage);
    expect(result).toMatchObject({ stage: 'raw', rawBytes: LIMIT + 1, maxBytes: LIMIT });
  });

  it('refuses a gzipped body that inflates past the limit, however small it is', () => {
    const bomb = gzipSync(Buffer.alloc(64 * 1024 * 1024, ' '), { level: 9 });
    expect(bomb.length).toBeLessThan(LIMIT);
    const result = read(bomb, 'gzip');
    expect(result).toBeInstanceOf(OversizeMessage);
    expect((result as OversizeMessage).stage).toBe('inflated');
    expect((result as OversizeMessage).reason).toBe(
      `gzipped body of ${bomb.length} bytes inflates past the ${LIMIT}-byte limit`,
    );
  });

  it('refuses a gzipped body one byte over the limit once inflated', () => {
    const bomb = gzipSync(Buffer.alloc(LIMIT + 1, ' '));
    expect(read(bomb, 'gzip')).toBeInstanceOf(OversizeMessage);
  });

  it('still reports broken JSON and broken gzip as unreadable', () => {
    expect(read(Buffer.from('{"Event-Name"'))).toBeInstanceOf(UnreadableMessage);
    expect(read(Buffer.from('not gzip'), 'gzip')).toBeInstanceOf(UnreadableMessage);
  });

  it('defaults to 1 MiB', () => {
    const body = Buffer.alloc(DEFAULT_MAX_MESSAGE_BYTES + 1, ' ');
    expect(deserializeKazooMessage(body, messageWith(body))).toBeInstanceOf(OversizeMessage);
    expect(DEFAULT_MAX_MESSAGE_BYTES).toBe(1024 * 1024);
  });
});
