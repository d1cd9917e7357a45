import fc from 'fast-check';
import { callEvent } from '../support/kazoo-events';
import {
  CLOSED,
  type Answer,
  ConnectionPool,
  FuzzedNode,
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

/** socket.io 4 over its websocket transport, spoken raw so any frame can be sent. */
async function openSocketIo(url: string): Promise<RawSocket> {
  const socket = await RawSocket.open(`${url}/socket.io/?EIO=4&transport=websocket`);
  // Engine.io pings every 25 s and drops clients that do not answer.
  socket.autoReply = (message) => (message === '2' ? '3' : undefined);
  await socket.waitFor((message) => message.startsWith('0{'));
  socket.send('40');
  const connected = await socket.waitFor((message) => message.startsWith('40{'));
  if (connected === CLOSED) throw new Error('socket.io refused the namespace connection');
  return socket;
}

interface IoFrame {
  readonly kind: 'event' | 'binary-event' | 'text' | 'bytes' | 'binary' | 'oversized';
  readonly text?: string;
  readonly bytes?: Buffer;
  /** The event packet asks for an acknowledgement. */
  readonly ack?: boolean;
  readonly args?: readonly unknown[];
  readonly event?: unknown;
}

/** Events socket.io keeps for itself; a client sending one is refused by socket.io, not us. */
const RESERVED = new Set([
  'connect',
  'connect_error',
  'disconnect',
  'disconnecting',
  'newListener',
  'removeListener',
]);

/** An ack or event body Blackhole sent: an error always carries a `code`. */
function expectCoded(message: string): void {
  const ack = /^43\d+(\[.*)$/s.exec(message);
  if (ack) {
    const [body] = JSON.parse(ack[1]) as [{ status?: string; data?: { code?: unknown } }];
    if (body.status !== 'success') expect(typeof body.data?.code).toBe('string');
    return;
  }
  if (message.startsWith('42[')) {
    const [name, payload] = JSON.parse(message.slice(2)) as [string, { code?: unknown }];
    if (name === 'error' || name === 'auth_failure') expect(typeof payload?.code).toBe('string');
  }
}

/** Deliveries (not acks, not errors) a raw socket got. */
function deliveries(messages: readonly string[]): string[] {
  return messages.filter(
    (message) =>
      message.startsWith('42[') &&
      !message.startsWith('42["error"') &&
      !message.startsWith('42["auth_failure"'),
  );
}

/**
 * socket.io 2–4 under hostile frames: every request with an ack gets one (an error with a
 * `code`), every connection answers a well-formed probe after each frame or was closed, the node
 * stays up, and its bystander gets every marker and no fuzzed socket any.
 */
describe('fuzz: socket.io', () => {
  const node = FuzzedNode.forSuite();

  it(
    'acks or closes for every frame, and serves the bystander throughout',
    async () => {
      const { stack } = node;
      const fuzzed = stack.account();
      const bystanderAccount = stack.account();
      const bystander = await stack.connect('v4');
      await bystander.subscribe(
        bystanderAccount.token,
        bystanderAccount.accountId,
        'call.CHANNEL_CREATE.*',
      );
      const observer = await stack.connect('v2');
      await observer.subscribe(fuzzed.token, fuzzed.accountId, 'call.CHANNEL_CREATE.*');
      const markers = new Markers(stack, bystanderAccount.accountId, 'io-bystander-marker');

      const payload = fc.oneof(
        {
          weight: 4,
          arbitrary: requestBody(fuzzed.token, fuzzed.accountId, bystanderAccount.accountId),
        },
        { weight: 1, arbitrary: wrongTyped },
      );
      const eventName = fc.oneof(
        { weight: 6, arbitrary: fc.constantFrom('subscribe', 'unsubscribe') },
        { weight: 1, arbitrary: fc.constantFrom(...RESERVED, 'error', 'auth_failure', 'ping') },
        { weight: 1, arbitrary: fc.string({ maxLength: 12 }) },
        { weight: 1, arbitrary: fc.oneof(fc.integer(), fc.constant(null), fc.constant({})) },
      );
      const event = fc.record({
        event: eventName,
        args: fc.oneof(
          { weight: 4, arbitrary: payload.map((p) => [p]) },
          { weight: 1, arbitrary: fc.array(anyJson, { maxLength: 3 }) },
        ),
        ack: fc.boolean(),
      });
      const frame: fc.Arbitrary<IoFrame> = fc.oneof(
        { weight: 8, arbitrary: event.map((e) => ({ kind: 'event' as const, ...e })) },
        {
          weight: 1,
          arbitrary: fc
            .tuple(event, fc.integer({ min: 0, max: 3 }), randomBytes)
            .map(([e, declared, bytes]) => ({
              kind: 'binary-event' as const,
              text: `45${declared}-${JSON.stringify([e.event, { _placeholder: true, num: 0 }])}`,
              bytes,
            })),
        },
        {
          weight: 2,
          arbitrary: truncated(event.map((e) => `42${JSON.stringify([e.event, ...e.args])}`)).map(
            (text) => ({ kind: 'text' as const, text }),
          ),
        },
        {
          weight: 1,
          arbitrary: fc
            .tuple(
              fc.constantFrom('', '0', '1', '2', '3', '4', '40', '42', '43', '44', '45', '46', '6'),
              randomText,
            )
            .map(([prefix, text]) => ({ kind: 'text' as const, text: `${prefix}${text}` })),
        },
        { weight: 1, arbitrary: randomBytes.map((bytes) => ({ kind: 'bytes' as const, bytes })) },
        { weight: 1, arbitrary: randomBytes.map((bytes) => ({ kind: 'binary' as const, bytes })) },
        {
          weight: 1,
          arbitrary: oversized.map((text) => ({
            kind: 'oversized' as const,
            text: `42["subscribe","${text}"]`,
          })),
        },
      );

      const connections = new ConnectionPool(4, () => openSocketIo(stack.gateway.url));
      node.closeAfter(() => connections.closeAll());
      let sent = 0;

      await fc.assert(
        fc.asyncProperty(frame, fc.nat(connections.size - 1), async (candidate, index) => {
          const socket = await connections.get(index);
          const from = socket.messages.length;
          sent += 1;
          const ackId = 2 * sent;
          const probeId = 2 * sent + 1;
          let expectAck = false;
          let tooBig = candidate.kind === 'oversized';
          switch (candidate.kind) {
            case 'event': {
              expectAck =
                candidate.ack === true &&
                (candidate.event === 'subscribe' || candidate.event === 'unsubscribe');
              const id = candidate.ack ? String(ackId) : '';
              const packet = `42${id}${JSON.stringify([candidate.event, ...(candidate.args ?? [])])}`;
              tooBig = Buffer.byteLength(packet) > MAX_FRAME_BYTES;
              socket.send(packet);
              break;
            }
            case 'binary-event':
              socket.send(candidate.text ?? '');
              socket.send(candidate.bytes ?? Buffer.alloc(0), true);
              break;
            case 'bytes':
              socket.send(candidate.bytes ?? Buffer.alloc(0));
              break;
            case 'binary':
              socket.send(candidate.bytes ?? Buffer.alloc(0), true);
              break;
            case 'text':
            case 'oversized':
              socket.send(candidate.text ?? '');
          }
          socket.send(`42${probeId}["unsubscribe",{}]`);
          await markers.tick();
          const text = candidate.text ?? '';
          // `41…` leaves the namespace: nothing more is answered there, by design of socket.io.
          const mayLeave = candidate.kind !== 'event' && /^41/.test(text);
          let outcome: Answer;
          try {
            outcome = await socket.waitFor(
              (message) => message.startsWith(`43${probeId}[`),
              from,
              mayLeave ? 1000 : 5000,
            );
          } catch (error) {
            if (!mayLeave) throw error;
            socket.close();
            return;
          }
          socket.messages.slice(from).forEach(expectCoded);
          if (outcome === CLOSED) {
            // socket.io closes the transport itself on what it cannot parse or take; a
            // well-formed event is ours to answer and must never cost the connection.
            if (tooBig) {
              expect(socket.closeInfo?.code).toBe(1009);
              return;
            }
            const wellFormed =
              candidate.kind === 'event' &&
              typeof candidate.event === 'string' &&
              !RESERVED.has(candidate.event);
            expect(wellFormed ? `closed by ${socket.closeInfo?.code}` : 'ok').toBe('ok');
            return;
          }
          expect(tooBig).toBe(false);
          if (expectAck) {
            const acked = await socket.waitFor((m) => m.startsWith(`43${ackId}[`), from);
            expect(acked).not.toBe(CLOSED);
          }
        }),
        fuzzParameters(),
      );

      const last = await markers.publish();
      const observerMarker = 'io-observer-final';
      const own = callEvent('CHANNEL_CREATE', fuzzed.accountId, observerMarker);
      await stack.publisher.publish('callevt', own.routingKey, own.body);
      await observer.waitFor(
        'CHANNEL_CREATE',
        (p) => JSON.stringify(p).includes(observerMarker),
        10000,
      );
      await bystander.waitFor(
        'CHANNEL_CREATE',
        (p) => JSON.stringify(p).includes(`"${last}"`),
        10000,
      );

      const bystanderTexts = bystander.events.map((e) => JSON.stringify(e.payload));
      expect(markers.found(bystanderTexts)).toEqual(markers.published);
      expect(bystanderTexts.filter((t) => t.includes(observerMarker))).toEqual([]);
      const fuzzedDeliveries = connections.opened.flatMap((socket) => deliveries(socket.messages));
      expect(markers.found(fuzzedDeliveries)).toEqual([]);
      expect(fuzzedDeliveries.filter((t) => t.includes(bystanderAccount.accountId))).toEqual([]);

      connections.closeAll();
      await node.expectUnharmed();
    },
    FUZZ_TIMEOUT_MS,
  );
});
