import { EventEmitter } from 'node:events';
import type { WebSocket } from 'ws';
import { LegacySession } from './legacy.session';

/** The part of a `ws` socket a session uses, recording what it is asked to do. */
class FakeSocket extends EventEmitter {
  readonly sent: string[] = [];
  pings = 0;
  terminated = false;
  closed = false;
  send(packet: string): void {
    this.sent.push(packet);
  }
  ping(): void {
    this.pings++;
  }
  terminate(): void {
    this.terminated = true;
  }
  close(): void {
    this.closed = true;
  }
}

const attached = (): { session: LegacySession; socket: FakeSocket; ended: LegacySession[] } => {
  const ended: LegacySession[] = [];
  const session = new LegacySession((closed) => ended.push(closed));
  const socket = new FakeSocket();
  session.attachWebSocket(socket as unknown as WebSocket);
  return { session, socket, ended };
};

describe('LegacySession', () => {
  it('sends 1:: before the packets that waited for the WebSocket', () => {
    const session = new LegacySession(() => undefined);
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
    const session = new LegacySession((closed) => ended.push(closed));
    session.checkWebSocket();
    session.checkWebSocket();
    expect(ended).toEqual([]);
  });

  it('handles received packets one after the other, in arrival order, past a failing one', async () => {
    const session = new LegacySession(() => undefined);
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
});
