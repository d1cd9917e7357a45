import fc from 'fast-check';
import { decodePayload } from '../../src/gateways/socket-io-legacy/legacy-packets';
import { callEvent } from '../support/kazoo-events';
import { LegacyClient } from '../support/legacy-client';
import {
  CLOSED,
  ConnectionPool,
  FuzzedNode,
  type Answer,
  answerOf,
  FUZZ_TIMEOUT_MS,
  MAX_FRAME_BYTES,
  Markers,
  RawSocket,
  anyJson,
  fuzzParameters,
  oversized,
  randomBytes,
  randomText,
  requestBody,
  truncated,
  wrongTyped,
} from './fuzz-harness';

const NOT_HANDSHAKEN = '7:::1+0';

/** One fuzzed 0.9 session, over either transport. */
interface LegacyConnection {
  readonly isOpen: boolean;
  readonly messages: string[];
  /** Sends a WebSocket frame, or POSTs a body. */
  send(frame: string | Buffer, binary: boolean): Promise<void>;
  waitFor(match: (packet: string) => boolean, from: number, timeoutMs?: number): Promise<Answer>;
  close(): void;
}

async function handshake(url: string): Promise<string> {
  const response = await fetch(`${url}/socket.io/1/?t=${Date.now()}`);
  return (await response.text()).split(':')[0];
}

async function openWebSocket(url: string): Promise<LegacyConnection> {
  const sid = await handshake(url);
  const socket = await RawSocket.open(`${url}/socket.io/1/websocket/${sid}`);
  socket.autoReply = (packet) => (packet === '2::' ? '2::' : undefined);
  await socket.waitFor((packet) => packet === '1::');
  return {
    get isOpen() {
      return socket.isOpen;
    },
    messages: socket.messages,
    send: (frame, binary) => Promise.resolve(socket.send(frame, binary)),
    waitFor: (match, from, timeoutMs) => socket.waitFor(match, from, timeoutMs),
    close: () => socket.close(),
  };
}

/** xhr-polling: POSTs carry frames, one long-poll at a time brings packets back. */
class PollingConnection implements LegacyConnection {
  readonly messages: string[] = [];
  private closed = false;
  private readonly listeners = new Set<() => void>();

  private constructor(private readonly endpoint: string) {}

  static async open(url: string): Promise<PollingConnection> {
    const connection = new PollingConnection(
      `${url}/socket.io/1/xhr-polling/${await handshake(url)}`,
    );
    connection.pollForever();
    await connection.waitFor((packet) => packet === '1::', 0);
    return connection;
  }

  get isOpen(): boolean {
    return !this.closed;
  }

  async send(frame: string | Buffer): Promise<void> {
    if (this.closed) return;
    const response = await fetch(this.endpoint, {
      method: 'POST',
      body: typeof frame === 'string' ? frame : new Uint8Array(frame),
    });
    const text = await response.text();
    // 413: over MAX_FRAME_BYTES; 7:::1+0: the session is gone.
    if (response.status !== 200 || text === NOT_HANDSHAKEN) this.end();
  }

  waitFor(match: (packet: string) => boolean, from: number, timeoutMs = 5000): Promise<Answer> {
    const check = (): Answer | undefined =>
      this.messages.slice(from).find(match) ?? (this.closed ? CLOSED : undefined);
    return answerOf(check, this.listeners, this.messages, timeoutMs);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    void fetch(`${this.endpoint}?disconnect`).catch(() => undefined);
    this.listeners.forEach((listener) => listener());
  }

  private end(): void {
    this.closed = true;
    this.listeners.forEach((listener) => listener());
  }

  private pollForever(): void {
    const poll = async (): Promise<void> => {
      while (!this.closed) {
        const body = await (await fetch(this.endpoint)).text();
        if (body === NOT_HANDSHAKEN) break;
        const packets = decodePayload(body);
        this.messages.push(...packets);
        if (packets.includes('2::')) await this.send('2::');
        this.listeners.forEach((listener) => listener());
        if (packets.includes('0::')) break;
      }
      this.end();
    };
    poll().catch(() => this.end());
  }
}

interface LegacyFrame {
  readonly kind: 'packet' | 'body' | 'bytes' | 'binary' | 'oversized';
  readonly text?: string;
  readonly bytes?: Buffer;
  /** An event asking for an ack with data, whose id the fuzzer tracks. */
  readonly tracked?: boolean;
}

/** Errors and acks Blackhole sent carry a `code` when they report a failure. */
function expectCoded(packet: string): void {
  const ack = /^6:::\d+\+(.*)$/s.exec(packet);
  if (ack) {
    const [body] = JSON.parse(ack[1]) as [{ status?: string; data?: { code?: unknown } }];
    if (body?.status !== 'success') expect(typeof body?.data?.code).toBe('string');
    return;
  }
  if (packet.startsWith('5:::')) {
    const event = JSON.parse(packet.slice(4)) as { name: string; args: { code?: unknown } };
    if (event.name === 'error' || event.name === 'auth_failure') {
      expect(typeof event.args?.code).toBe('string');
    }
  }
}

function deliveries(packets: readonly string[]): string[] {
  return packets.filter(
    (p) =>
      p.startsWith('5:::') &&
      !p.startsWith('5:::{"name":"error"') &&
      !p.startsWith('5:::{"name":"auth_failure"'),
  );
}

/** A body with `\ufffd<length>\ufffd` framing whose lengths may lie. */
function framed(packets: readonly string[], lies: readonly number[]): string {
  return packets
    .map((p, i) => `\ufffd${Math.max(0, p.length + (lies[i] ?? 0))}\ufffd${p}`)
    .join('');
}

/**
 * socket.io 0.9 under hostile packets, over WebSocket and xhr-polling: every connection answers a
 * well-formed probe after each frame or was closed, every error carries a `code`, the node stays
 * up, and its bystander gets every marker and no fuzzed session any.
 */
describe('fuzz: socket.io 0.9', () => {
  const node = FuzzedNode.forSuite();

  it(
    'answers or closes for every frame, and serves the bystander throughout',
    async () => {
      const { stack } = node;
      const fuzzed = stack.account();
      const bystanderAccount = stack.account();
      const bystander = await LegacyClient.connect(stack.gateway.url, 'websocket');
      const observer = await LegacyClient.connect(stack.gateway.url, 'websocket');
      node.closeAfter(() => bystander.close());
      node.closeAfter(() => observer.close());
      await bystander.emit(
        'subscribe',
        {
          auth_token: bystanderAccount.token,
          account_id: bystanderAccount.accountId,
          binding: 'call.CHANNEL_CREATE.*',
        },
        true,
      );
      await observer.emit(
        'subscribe',
        {
          auth_token: fuzzed.token,
          account_id: fuzzed.accountId,
          binding: 'call.CHANNEL_CREATE.*',
        },
        true,
      );
      const markers = new Markers(stack, bystanderAccount.accountId, 'legacy-bystander-marker');

      const eventData = fc
        .record(
          {
            name: fc.oneof(
              { weight: 6, arbitrary: fc.constantFrom('subscribe', 'unsubscribe') },
              { weight: 1, arbitrary: fc.string({ maxLength: 12 }) },
              { weight: 1, arbitrary: wrongTyped },
            ),
            args: fc.oneof(
              {
                weight: 4,
                arbitrary: requestBody(
                  fuzzed.token,
                  fuzzed.accountId,
                  bystanderAccount.accountId,
                ).map((b) => [b]),
              },
              {
                weight: 1,
                arbitrary: requestBody(fuzzed.token, fuzzed.accountId, bystanderAccount.accountId),
              },
              { weight: 1, arbitrary: wrongTyped },
            ),
          },
          { requiredKeys: [] },
        )
        .map((event) => JSON.stringify(event));
      const packet = fc
        .tuple(
          fc.oneof(
            { weight: 6, arbitrary: fc.constant('5') },
            { weight: 3, arbitrary: fc.constantFrom('1', '2', '3', '4', '6', '7', '8', '9') },
            { weight: 1, arbitrary: fc.constant('0') },
            { weight: 1, arbitrary: fc.string({ maxLength: 3 }) },
          ),
          fc.oneof(fc.constant(''), fc.nat().map(String), fc.string({ maxLength: 4 })),
          fc.constantFrom('', '+'),
          fc.oneof(
            { weight: 4, arbitrary: fc.constant('') },
            { weight: 1, arbitrary: fc.string({ maxLength: 10 }) },
          ),
          fc.oneof(
            { weight: 4, arbitrary: eventData },
            { weight: 1, arbitrary: truncated(eventData) },
            { weight: 1, arbitrary: anyJson.map((v) => JSON.stringify(v) ?? '') },
            { weight: 1, arbitrary: randomText },
          ),
        )
        .map(([type, id, plus, endpoint, data]) => `${type}:${id}${plus}:${endpoint}:${data}`);
      const frame: fc.Arbitrary<LegacyFrame> = fc.oneof(
        { weight: 6, arbitrary: packet.map((text) => ({ kind: 'packet' as const, text })) },
        {
          weight: 2,
          arbitrary: eventData.map((data) => ({
            kind: 'packet' as const,
            text: data,
            tracked: true,
          })),
        },
        {
          weight: 2,
          arbitrary: fc
            .tuple(
              fc.array(packet, { minLength: 1, maxLength: 4 }),
              fc.array(fc.integer({ min: -3, max: 3 }), { maxLength: 4 }),
            )
            .map(([packets, lies]) => ({ kind: 'body' as const, text: framed(packets, lies) })),
        },
        { weight: 1, arbitrary: randomText.map((text) => ({ kind: 'packet' as const, text })) },
        { weight: 1, arbitrary: randomBytes.map((bytes) => ({ kind: 'bytes' as const, bytes })) },
        { weight: 1, arbitrary: randomBytes.map((bytes) => ({ kind: 'binary' as const, bytes })) },
        {
          weight: 1,
          arbitrary: oversized.map((text) => ({ kind: 'oversized' as const, text: `5:::${text}` })),
        },
      );

      let opened = 0;
      const connections = new ConnectionPool<LegacyConnection>(4, () =>
        ++opened % 2 === 0
          ? openWebSocket(stack.gateway.url)
          : PollingConnection.open(stack.gateway.url),
      );
      node.closeAfter(() => connections.closeAll());
      let sent = 0;

      await fc.assert(
        fc.asyncProperty(frame, fc.nat(connections.size - 1), async (candidate, index) => {
          const connection = await connections.get(index);
          const from = connection.messages.length;
          sent += 1;
          const ackId = 2 * sent;
          const probeId = 2 * sent + 1;
          const text = candidate.tracked ? `5:${ackId}+::${candidate.text}` : candidate.text;
          const tooBig = Buffer.byteLength(text ?? candidate.bytes ?? '') > MAX_FRAME_BYTES;
          await connection.send(text ?? candidate.bytes ?? '', candidate.kind === 'binary');
          await connection.send(
            `5:${probeId}+::${JSON.stringify({ name: 'unsubscribe', args: [{}] })}`,
            false,
          );
          await markers.tick();
          const outcome = await connection.waitFor((p) => p.startsWith(`6:::${probeId}+`), from);
          connection.messages.slice(from).forEach(expectCoded);
          if (outcome === CLOSED) {
            // Closing is the answer to a disconnect packet (`0:…`), a frame too big, or bytes
            // that are not UTF-8 text; anything else must be answered.
            const mayClose = tooBig || candidate.kind === 'bytes' || /(^|\ufffd)0/.test(text ?? '');
            expect(mayClose ? 'ok' : `closed after ${candidate.kind} ${JSON.stringify(text)}`).toBe(
              'ok',
            );
            return;
          }
          expect(tooBig).toBe(false);
          if (candidate.tracked) {
            expect(await connection.waitFor((p) => p.startsWith(`6:::${ackId}+`), from)).not.toBe(
              CLOSED,
            );
          }
        }),
        fuzzParameters(),
      );

      const last = await markers.publish();
      const observerMarker = 'legacy-observer-final';
      const own = callEvent('CHANNEL_CREATE', fuzzed.accountId, observerMarker);
      await stack.publisher.publish('callevt', own.routingKey, own.body);
      await observer.waitForPacket((p) => p.includes(observerMarker), 10000);
      await bystander.waitForPacket((p) => p.includes(`"${last}"`), 10000);

      expect(markers.found(bystander.received)).toEqual(markers.published);
      expect(bystander.received.filter((p) => p.includes(observerMarker))).toEqual([]);
      const fuzzedDeliveries = connections.opened.flatMap((c) => deliveries(c.messages));
      expect(markers.found(fuzzedDeliveries)).toEqual([]);
      expect(fuzzedDeliveries.filter((p) => p.includes(bystanderAccount.accountId))).toEqual([]);

      connections.closeAll();
      await node.expectUnharmed();
    },
    FUZZ_TIMEOUT_MS,
  );
});
