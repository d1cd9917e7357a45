import fc from 'fast-check';
import { callEvent } from '../support/kazoo-events';
import {
  CLOSED,
  ConnectionPool,
  FuzzedNode,
  FUZZ_TIMEOUT_MS,
  Markers,
  RawSocket,
  anyJson,
  fuzzParameters,
  oversized,
  randomBytes,
  randomText,
  requestBody,
  token,
  truncated,
  wrongTyped,
} from './fuzz-harness';

/** Stands for "a request id the fuzzer tracks": replaced by a fresh one when sent. */
const TRACKED = '\u0000tracked';

interface WsFrame {
  readonly kind: 'json' | 'text' | 'bytes' | 'binary' | 'oversized';
  readonly payload: string | Buffer | Record<string, unknown>;
}

interface Reply {
  action?: string;
  request_id?: string;
  status?: string;
  data?: { code?: unknown };
}

/** Close codes `ws` itself sends for frames it cannot take: invalid UTF-8, too big. */
const PROTOCOL_CLOSE_CODES = new Set([1007, 1009]);

/**
 * Kazoo 4.x's plain-WebSocket protocol under hostile frames: every frame gets a reply carrying a
 * `code` when it fails (under its `request_id` when it had one) or closes the connection with a
 * code; the node stays up, its bystander gets every marker and no fuzzed connection any.
 */
describe('fuzz: Kazoo 4.x plain WebSocket', () => {
  const node = FuzzedNode.forSuite();

  it(
    'answers or closes with a code for every frame, and serves the bystander throughout',
    async () => {
      const { stack } = node;
      const fuzzed = stack.account();
      const bystanderAccount = stack.account();
      const bystander = await stack.connectWs();
      await bystander.subscribe(
        bystanderAccount.token,
        bystanderAccount.accountId,
        'call.CHANNEL_CREATE.*',
      );
      const observer = await stack.connectWs();
      await observer.subscribe(fuzzed.token, fuzzed.accountId, 'call.CHANNEL_CREATE.*');
      const markers = new Markers(stack, bystanderAccount.accountId, 'ws-bystander-marker');

      const request = fc.record(
        {
          action: fc.oneof(
            { weight: 4, arbitrary: fc.constantFrom('subscribe', 'unsubscribe', 'ping') },
            { weight: 1, arbitrary: fc.string({ maxLength: 12 }) },
            { weight: 1, arbitrary: wrongTyped },
          ),
          request_id: fc.oneof(
            { weight: 4, arbitrary: fc.constant(TRACKED) },
            { weight: 1, arbitrary: wrongTyped },
          ),
          auth_token: token(fuzzed.token),
          data: fc.oneof(
            {
              weight: 4,
              arbitrary: requestBody(fuzzed.token, fuzzed.accountId, bystanderAccount.accountId),
            },
            { weight: 1, arbitrary: wrongTyped },
          ),
          name: anyJson,
          metadata: anyJson,
        },
        { requiredKeys: ['request_id'] },
      );
      const frame: fc.Arbitrary<WsFrame> = fc.oneof(
        { weight: 8, arbitrary: request.map((payload) => ({ kind: 'json' as const, payload })) },
        {
          weight: 2,
          arbitrary: truncated(request.map((r) => JSON.stringify(r))).map((payload) => ({
            kind: 'text' as const,
            payload,
          })),
        },
        {
          weight: 1,
          arbitrary: anyJson.map((v) => ({
            kind: 'text' as const,
            payload: JSON.stringify(v) ?? 'null',
          })),
        },
        { weight: 1, arbitrary: randomText.map((payload) => ({ kind: 'text' as const, payload })) },
        {
          weight: 1,
          arbitrary: randomBytes.map((payload) => ({ kind: 'bytes' as const, payload })),
        },
        {
          weight: 1,
          arbitrary: randomBytes.map((payload) => ({ kind: 'binary' as const, payload })),
        },
        {
          weight: 1,
          arbitrary: oversized.map((payload) => ({ kind: 'oversized' as const, payload })),
        },
      );

      const connections = new ConnectionPool(4, () => RawSocket.open(stack.gateway.url));
      node.closeAfter(() => connections.closeAll());
      let sent = 0;
      const replies = (socket: RawSocket, from: number): Reply[] =>
        socket.messages
          .slice(from)
          .map((text) => JSON.parse(text) as Reply)
          .filter((message) => message.action === 'reply');

      await fc.assert(
        fc.asyncProperty(frame, fc.nat(connections.size - 1), async (candidate, index) => {
          const socket = await connections.get(index);
          const from = socket.messages.length;
          const id = `f${++sent}`;
          let tracked: string | undefined;
          if (candidate.kind === 'json') {
            const payload = candidate.payload as Record<string, unknown>;
            tracked = payload.request_id === TRACKED ? id : undefined;
            socket.send(JSON.stringify({ ...payload, request_id: tracked ?? payload.request_id }));
          } else {
            socket.send(candidate.payload as string | Buffer, candidate.kind === 'binary');
          }
          // A well-formed probe right behind: it is answered (token_required at worst) or the
          // connection was closed.
          const probe = `p${sent}`;
          socket.send(JSON.stringify({ action: 'ping', request_id: probe }));
          await markers.tick();
          const outcome = await socket.waitFor(
            (text) => (JSON.parse(text) as Reply).request_id === probe,
            from,
          );
          if (outcome === CLOSED) {
            const code = socket.closeInfo?.code ?? 0;
            if (candidate.kind === 'oversized') expect(code).toBe(1009);
            else
              expect(PROTOCOL_CLOSE_CODES.has(code) ? 'protocol close' : `close ${code}`).toBe(
                'protocol close',
              );
            return;
          }
          expect(candidate.kind).not.toBe('oversized');
          // The frame's own reply may come after the probe's (it may wait for Crossbar).
          await socket.waitFor(() => replies(socket, from).length >= 2, from);
          const answered = replies(socket, from);
          if (tracked) expect(answered.map((r) => r.request_id)).toContain(tracked);
          for (const reply of answered) {
            if (reply.status !== 'success') expect(typeof reply.data?.code).toBe('string');
          }
        }),
        fuzzParameters(),
      );

      // The observer of the fuzzed account gets its own final marker: everything published before
      // it has been delivered, to the bystander and to whoever else would (wrongly) get it.
      const last = await markers.publish();
      const observerMarker = 'ws-observer-final';
      const own = callEvent('CHANNEL_CREATE', fuzzed.accountId, observerMarker);
      await stack.publisher.publish('callevt', own.routingKey, own.body);
      await observer.waitForEvent((f) => f.data?.call_id === observerMarker, 10000);
      await bystander.waitForEvent((f) => f.data?.call_id === last, 10000);

      expect(markers.found(bystander.events.map((f) => String(f.data?.call_id)))).toEqual(
        markers.published,
      );
      expect(bystander.events.map((f) => f.data?.call_id)).not.toContain(observerMarker);
      const fuzzedEvents = connections.opened.flatMap((socket) =>
        socket.messages.filter((text) => (JSON.parse(text) as Reply).action === 'event'),
      );
      expect(markers.found(fuzzedEvents)).toEqual([]);
      expect(fuzzedEvents.filter((text) => text.includes(bystanderAccount.accountId))).toEqual([]);

      connections.closeAll();
      await node.expectUnharmed();
    },
    FUZZ_TIMEOUT_MS,
  );
});
