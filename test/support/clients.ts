import type { Socket } from 'node:net';
import { io as ioV4 } from 'socket.io-client';
import ioV2 from 'socket.io-client-v2';
import { CALL_EVENTS } from '../../src/features/call/call.family';

export type ClientVersion = 'v4' | 'v2';

export interface Ack {
  status: 'success' | 'error';
  data: {
    subscribed?: string[];
    unsubscribed?: string[];
    errors?: string[];
    code?: string;
    temporary?: boolean;
    /** `resume` acks: whether every missed event was replayed. */
    recovered?: boolean;
  };
}

export interface ReceivedEvent {
  readonly name: string;
  readonly payload: unknown;
  /** The second argument, when the server sent one (`{position}` with the replay log on). */
  readonly meta?: unknown;
}

/** Events every client records; socket.io 2.x has no `onAny`, so v2 clients listen by name. */
const ALWAYS_WATCHED = [...CALL_EVENTS, 'auth_failure', 'error'];

export interface ConnectOptions {
  /** More event names a v2 client must listen for (v4 clients record every event). */
  readonly watch?: readonly string[];
  readonly timeoutMs?: number;
  /** Request headers of the handshake (`X-Forwarded-For`, …). */
  readonly headers?: Record<string, string>;
  /** `['websocket']` unless told; `['polling']` keeps the client on long-polling. */
  readonly transports?: readonly ('websocket' | 'polling')[];
  /** Certificate to trust on an https URL. */
  readonly ca?: string;
}

interface RawSocket {
  /** socket.io's id of the socket; for a v2 client, also its Engine.IO session id. */
  readonly id?: string;
  on(event: string, listener: (...args: unknown[]) => void): unknown;
  onAny?(listener: (event: string, ...args: unknown[]) => void): unknown;
  emit(event: string, ...args: unknown[]): unknown;
  close(): unknown;
}

/**
 * A real socket.io client (v4, or v2 through Engine.IO 3) that records every watched event,
 * so tests can wait for what they expect and afterwards assert what never came.
 */
export class EventClient {
  readonly events: ReceivedEvent[] = [];
  private waiters: { match: (e: ReceivedEvent) => boolean; resolve: (e: ReceivedEvent) => void }[] =
    [];
  private disconnected = false;
  /** Why socket.io says the client was disconnected (`io server disconnect`, …). */
  disconnectReason: string | undefined;

  private constructor(
    readonly version: ClientVersion,
    private readonly socket: RawSocket,
    watch: readonly string[],
  ) {
    if (socket.onAny) {
      socket.onAny((name: string, payload: unknown, meta?: unknown) =>
        this.record({ name, payload, meta }),
      );
    } else {
      for (const name of new Set([...ALWAYS_WATCHED, ...watch])) {
        socket.on(name, (payload: unknown, meta?: unknown) => this.record({ name, payload, meta }));
      }
    }
    socket.on('disconnect', (reason: unknown) => {
      this.disconnected = true;
      this.disconnectReason = String(reason);
    });
  }

  static async connect(
    version: ClientVersion,
    url: string,
    { watch = [], timeoutMs = 5000, headers, transports = ['websocket'], ca }: ConnectOptions = {},
  ): Promise<EventClient> {
    const options = {
      transports: [...transports],
      // Polling must not upgrade behind the test's back.
      upgrade: false,
      forceNew: true,
      reconnection: false,
      extraHeaders: headers,
      ...(ca !== undefined ? { ca } : {}),
    };
    const socket: RawSocket = version === 'v4' ? ioV4(url, options) : ioV2(url, options);
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`${version} client did not connect to ${url}`)),
        timeoutMs,
      );
      socket.on('connect', () => {
        clearTimeout(timer);
        resolve();
      });
      socket.on('connect_error', (error: unknown) => {
        clearTimeout(timer);
        reject(error instanceof Error ? error : new Error(String(error)));
      });
    });
    return new EventClient(version, socket, watch);
  }

  /** The socket's id as the server gave it, once connected. */
  get id(): string | undefined {
    return this.socket.id;
  }

  get isDisconnected(): boolean {
    return this.disconnected;
  }

  /** Emits `event` with an acknowledgement callback and resolves with the server's ack. */
  request(event: string, payload: unknown, timeoutMs = 5000): Promise<Ack> {
    return new Promise<Ack>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`no ack for ${event} within ${timeoutMs} ms`)),
        timeoutMs,
      );
      this.socket.emit(event, payload, (ack: unknown) => {
        clearTimeout(timer);
        resolve(ack as Ack);
      });
    });
  }

  /** `subscribe` with an acknowledgement; `binding` may be one binding or a list. */
  subscribe(token: string, accountId: string, binding: string | readonly string[]): Promise<Ack> {
    return this.request('subscribe', {
      auth_token: token,
      account_id: accountId,
      ...(typeof binding === 'string' ? { binding } : { bindings: binding }),
    });
  }

  /** Emits without an acknowledgement callback, as 0.9-era code does. */
  send(event: string, ...payload: unknown[]): void {
    this.socket.emit(event, ...payload);
  }

  /** Resolves with the first event (already received or future) named `name` that satisfies `match`. */
  waitFor(
    name: string,
    match: (payload: unknown) => boolean = () => true,
    timeoutMs = 5000,
  ): Promise<ReceivedEvent> {
    const matches = (e: ReceivedEvent): boolean => e.name === name && match(e.payload);
    const seen = this.events.find(matches);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const waiter = {
        match: matches,
        resolve: (e: ReceivedEvent) => {
          clearTimeout(timer);
          resolve(e);
        },
      };
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== waiter);
        reject(new Error(`${this.version} client: no ${name} event within ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiters.push(waiter);
    });
  }

  named(name: string): unknown[] {
    return this.events.filter((e) => e.name === name).map((e) => e.payload);
  }

  close(): void {
    this.socket.close();
  }

  /** Stops reading the websocket transport's TCP socket, as a client that no longer reads. */
  pauseReading(): void {
    this.tcp().pause();
  }

  resumeReading(): void {
    this.tcp().resume();
  }

  /**
   * Writes a raw Engine.IO packet on the websocket transport, such as `3` (a pong): the
   * keep-alive of a client that reads nothing, not even the server's pings.
   */
  sendEnginePacket(packet: string): void {
    this.websocket().send(packet);
  }

  private websocket(): { _socket: Socket; send(data: string): void } {
    const { transport } = (
      this.socket as unknown as {
        io: {
          engine: {
            transport: { name: string; ws?: { _socket: Socket; send(data: string): void } };
          };
        };
      }
    ).io.engine;
    if (transport.name !== 'websocket' || !transport.ws) throw new Error('not on websocket');
    return transport.ws;
  }

  private tcp(): Socket {
    return this.websocket()._socket;
  }

  private record(event: ReceivedEvent): void {
    this.events.push(event);
    const ready = this.waiters.filter((w) => w.match(event));
    this.waiters = this.waiters.filter((w) => !w.match(event));
    ready.forEach((w) => w.resolve(event));
  }
}

/**
 * A bare Engine.IO 4 long-polling client speaking socket.io's packets, for what
 * `socket.io-client` will not do: stop polling while it keeps posting keep-alives.
 */
export class PollingClient {
  private constructor(
    private readonly url: string,
    readonly sid: string,
  ) {}

  static async connect(url: string): Promise<PollingClient> {
    const open = await (await fetch(`${url}/socket.io/?EIO=4&transport=polling`)).text();
    const { sid } = JSON.parse(open.slice(1)) as { sid: string };
    const client = new PollingClient(url, sid);
    await client.post('40');
    const connected = await client.poll();
    if (!connected.some((packet) => packet.startsWith('40'))) {
      throw new Error(`socket.io did not connect: ${connected.join(' ')}`);
    }
    return client;
  }

  /** `subscribe` with an acknowledgement, read from the polls that follow. */
  async subscribe(token: string, accountId: string, binding: string): Promise<Ack> {
    await this.post(
      `420${JSON.stringify(['subscribe', { auth_token: token, account_id: accountId, binding }])}`,
    );
    for (;;) {
      const ack = (await this.poll()).find((packet) => packet.startsWith('430'));
      if (ack) return (JSON.parse(ack.slice(3)) as [Ack])[0];
    }
  }

  /** One GET: the packets the server had waiting (or a ping), split on Engine.IO 4's separator. */
  async poll(): Promise<string[]> {
    const response = await fetch(this.endpoint());
    const body = await response.text();
    if (response.status !== 200) throw new Error(`poll answered ${response.status}: ${body}`);
    return body.split('\x1e');
  }

  /** The status of one GET, for a session that may be gone. */
  async pollStatus(): Promise<number> {
    const response = await fetch(this.endpoint());
    await response.text();
    return response.status;
  }

  async post(packet: string): Promise<void> {
    const response = await fetch(this.endpoint(), { method: 'POST', body: packet });
    await response.text();
  }

  private endpoint(): string {
    return `${this.url}/socket.io/?EIO=4&transport=polling&sid=${this.sid}&t=${Date.now()}`;
  }
}
