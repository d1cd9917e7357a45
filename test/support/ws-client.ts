import type { Socket } from 'node:net';
import { WebSocket } from 'ws';

export interface KazooFrame {
  action?: string;
  request_id?: string;
  status?: string;
  data?: Record<string, unknown>;
  subscribed_key?: string;
  subscription_key?: string;
  name?: string;
  routing_key?: string;
  /** Replay log position (`REPLAY_WINDOW_S` > 0). */
  position?: string;
}

/**
 * A plain-WebSocket client speaking Kazoo 4.x's JSON protocol, as monster-ui does. It records
 * every frame so tests wait for what they expect and afterwards assert what never came.
 */
export class KazooWsClient {
  readonly frames: KazooFrame[] = [];
  private waiters: { match: (f: KazooFrame) => boolean; resolve: (f: KazooFrame) => void }[] = [];
  private closeInfo: { code: number; reason: string } | undefined;
  private readonly closed: Promise<{ code: number; reason: string }>;
  private counter = 0;

  private constructor(private readonly socket: WebSocket) {
    socket.on('message', (data, isBinary) => {
      if (isBinary) return;
      const bytes = Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data as ArrayBuffer);
      const text = bytes.toString('utf8');
      this.record(JSON.parse(text) as KazooFrame);
    });
    this.closed = new Promise((resolve) =>
      socket.on('close', (code, reason) => {
        this.closeInfo = { code, reason: reason.toString() };
        resolve(this.closeInfo);
      }),
    );
  }

  /** Connects to `url` (`http://host:port`, or `https://` for wss) on `path`, `/` by default like monster-ui. */
  static async connect(
    url: string,
    path = '/',
    {
      autoPong = true,
      timeoutMs = 5000,
      ca,
      headers,
    }: {
      autoPong?: boolean;
      timeoutMs?: number;
      ca?: string;
      headers?: Record<string, string>;
    } = {},
  ): Promise<KazooWsClient> {
    // Without autoPong the client ignores the server's pings, as a dead peer would.
    const socket = new WebSocket(`${url.replace(/^http/, 'ws')}${path}`, {
      autoPong,
      headers,
      ...(ca !== undefined ? { ca } : {}),
    });
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`no WebSocket connection to ${url}${path}`)),
        timeoutMs,
      );
      socket.once('open', () => {
        clearTimeout(timer);
        resolve();
      });
      socket.once('error', (error) => {
        clearTimeout(timer);
        reject(error);
      });
    });
    return new KazooWsClient(socket);
  }

  get isOpen(): boolean {
    return this.socket.readyState === WebSocket.OPEN;
  }

  get events(): KazooFrame[] {
    return this.frames.filter((frame) => frame.action === 'event');
  }

  /** Sends a request and resolves with the reply carrying its `request_id`. */
  request(frame: Record<string, unknown>, timeoutMs = 5000): Promise<KazooFrame> {
    const requestId =
      typeof frame.request_id === 'string' ? frame.request_id : `r${++this.counter}`;
    this.sendRaw(JSON.stringify({ request_id: requestId, ...frame }));
    return this.waitFor((f) => f.action === 'reply' && f.request_id === requestId, timeoutMs);
  }

  subscribe(
    token: string | undefined,
    accountId: string,
    binding: string | string[],
  ): Promise<KazooFrame> {
    return this.request({
      action: 'subscribe',
      ...(token ? { auth_token: token } : {}),
      data: {
        account_id: accountId,
        ...(typeof binding === 'string' ? { binding } : { bindings: binding }),
      },
    });
  }

  /** Sends anything: text, bytes, as is. */
  sendRaw(payload: string | Buffer, binary = false): void {
    this.socket.send(payload, { binary });
  }

  /** Resolves with the first frame (already received or future) that satisfies `match`. */
  waitFor(match: (frame: KazooFrame) => boolean, timeoutMs = 5000): Promise<KazooFrame> {
    const seen = this.frames.find(match);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const waiter = {
        match,
        resolve: (frame: KazooFrame) => {
          clearTimeout(timer);
          resolve(frame);
        },
      };
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== waiter);
        reject(new Error(`no matching frame within ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiters.push(waiter);
    });
  }

  /** Resolves with the first event frame that satisfies `match`. */
  waitForEvent(
    match: (frame: KazooFrame) => boolean = () => true,
    timeoutMs = 5000,
  ): Promise<KazooFrame> {
    return this.waitFor((frame) => frame.action === 'event' && match(frame), timeoutMs);
  }

  /** Resolves with the close code and reason once the server closes the connection. */
  whenClosed(timeoutMs = 5000): Promise<{ code: number; reason: string }> {
    return Promise.race([
      this.closed,
      new Promise<never>((_, reject) =>
        setTimeout(() => reject(new Error('still open')), timeoutMs).unref(),
      ),
    ]);
  }

  close(): void {
    this.socket.close();
  }

  /** Stops reading the TCP socket, as a client that no longer reads its events. */
  pauseReading(): void {
    this.tcp().pause();
  }

  resumeReading(): void {
    this.tcp().resume();
  }

  /** An unsolicited pong: the keep-alive of a client that does not read the server's pings. */
  sendPong(): void {
    this.socket.pong();
  }

  private tcp(): Socket {
    return (this.socket as unknown as { _socket: Socket })._socket;
  }

  private record(frame: KazooFrame): void {
    this.frames.push(frame);
    const ready = this.waiters.filter((w) => w.match(frame));
    this.waiters = this.waiters.filter((w) => !w.match(frame));
    ready.forEach((w) => w.resolve(frame));
  }
}
