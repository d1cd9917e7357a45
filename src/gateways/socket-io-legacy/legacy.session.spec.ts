import { EventEmitter } from 'node:events';
import type { WebSocket } from 'ws';
import { LegacySession, type OutboundLimit } from './legacy.session';

const LIMIT: OutboundLimit = { maxOutboundBytes: 1024 * 1024, onSlowConsumer: () => undefined };

/** The part of a `ws` socket a session uses, recording what it is asked to do. */
class FakeSocket extends EventEmitter {
  readonly sent: string[] = [];
  pings = 0;
  terminated = false;
  closed = false;
  closeCode: number | undefined;
  readonly CLOSED = 3;
  readyState = 1;
  /** What a peer that does not read leaves in the socket. */
  bufferedAmount = 0;
  send(packet: string): void {
    this.sent.push(packet);
  }
  ping(): void {
    this.pings++;
  }
  terminate(): void {
    this.terminated = true;
  }
  close(code?: number): void {
    this.closed = true;
    this.closeCode = code;
  }
}

const attached = (): { session: LegacySession; socket: FakeSocket; ended: LegacySession[] } => {
  const ended: LegacySession[] = [];
  const session = new LegacySession((closed) => ended.push(closed), LIMIT);
  const socket = new FakeSocket();
  session.attachWebSocket(socket as unknown as WebSocket);
  return { session, socket, ended };
};

describe('LegacySession', () => {
  it('sends 1:: before the packets that waited for the WebSocket', () => {
    const session = new LegacySession(() => undefined, LIMIT);
    session.write('5:::{"name":"error","args":{}}');
    const socket = new FakeSocket();
    session.attachWebSocket(socket as unknown as WebSocket);
    expect(socket.sent).toEqual(['1::', '5:::{"name":"error","args":{}}']);
    expect(session.transport).toBe('websocket');
  });

  it('keeps a WebSocket peer that answers every ping', () => {
    const { session, socket, ended } = attached();
    for (let i = 0; i < 5; i++) {
      session.checkWebSocket();
      socket.emit('pong');
    }
    expect(socket.pings).toBe(5);
    expect(socket.terminated).toBe(false);
    expect(ended).toEqual([]);
  });

  it('terminates a WebSocket peer that missed a pong, and ends the session once', () => {
    const { session, socket, ended } = attached();
    session.checkWebSocket();
    session.checkWebSocket();
    expect(socket.pings).toBe(1);
    expect(socket.terminated).toBe(true);
    expect(session.closed).toBe(true);
    expect(ended).toEqual([session]);
    socket.emit('close');
    session.close();
    expect(ended).toHaveLength(1);
  });

  it('has nothing to ping without a WebSocket', () => {
    const ended: LegacySession[] = [];
    const session = new LegacySession((closed) => ended.push(closed), LIMIT);
    session.checkWebSocket();
    session.checkWebSocket();
    expect(ended).toEqual([]);
  });

  it('handles received packets one after the other, in arrival order, past a failing one', async () => {
    const session = new LegacySession(() => undefined, LIMIT);
    const order: string[] = [];
    let releaseFirst = (): void => undefined;
    const first = session.enqueue(
      () =>
        new Promise<void>((resolve) => {
          releaseFirst = () => {
            order.push('first');
            resolve();
          };
        }),
    );
    const failing = session.enqueue(() => {
      order.push('second');
      return Promise.reject(new Error('boom'));
    });
    const third = session.enqueue(() => {
      order.push('third');
      return Promise.resolve();
    });
    await Promise.resolve();
    expect(order).toEqual([]);
    releaseFirst();
    await first;
    await expect(failing).rejects.toThrow('boom');
    await third;
    expect(order).toEqual(['first', 'second', 'third']);
  });

  describe('slow consumers', () => {
    const limited = (): { limit: OutboundLimit; slow: LegacySession[] } => {
      const slow: LegacySession[] = [];
      return { limit: { maxOutboundBytes: 100, onSlowConsumer: (s) => slow.push(s) }, slow };
    };

    it('drops a polling client whose waiting packets pass the byte limit', async () => {
      const { limit, slow } = limited();
      const ended: LegacySession[] = [];
      const session = new LegacySession((closed) => ended.push(closed), limit);
      session.write(`5:::${'x'.repeat(60)}`);
      expect(slow).toEqual([]);
      session.write(`5:::${'y'.repeat(60)}`);
      session.write(`5:::${'z'.repeat(60)}`);
      await Promise.resolve();
      expect(slow).toEqual([session]);
      expect(ended).toEqual([session]);
      expect(session.closed).toBe(true);
    });

    it('counts only what waits: packets taken by a poll no longer count', () => {
      const { limit, slow } = limited();
      const session = new LegacySession(() => undefined, limit);
      const response = new EventEmitter() as EventEmitter & { writeHead(): void; end(): void };
      response.writeHead = () => undefined;
      response.end = () => undefined;
      for (let i = 0; i < 5; i++) {
        session.attachPoll(response as never, 60000);
        session.write(`5:::${'x'.repeat(60)}`);
      }
      expect(slow).toEqual([]);
      session.close();
    });

    it('sends 0:: and closes with 4008 a WebSocket that keeps data unsent', async () => {
      const { limit, slow } = limited();
      const ended: LegacySession[] = [];
      const session = new LegacySession((closed) => ended.push(closed), limit);
      const socket = new FakeSocket();
      session.attachWebSocket(socket as unknown as WebSocket);
      session.write('5:::{}');
      expect(slow).toEqual([]);
      socket.bufferedAmount = 101;
      session.write('5:::{"name":"CHANNEL_CREATE"}');
      session.write('5:::{"name":"CHANNEL_ANSWER"}');
      await Promise.resolve();
      expect(slow).toEqual([session]);
      expect(ended).toEqual([session]);
      expect(socket.sent.slice(-2)).toEqual(['5:::{"name":"CHANNEL_CREATE"}', '0::']);
      expect(socket.closeCode).toBe(4008);
    });
  });
});
