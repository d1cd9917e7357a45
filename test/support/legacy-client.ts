import type { Socket } from 'node:net';
import { WebSocket } from 'ws';
import { httpRequest } from './http-request';

export type LegacyTransport = 'websocket' | 'xhr-polling';

export interface LegacyEvent {
  readonly name: string;
  readonly args: unknown;
}

export interface LegacyConnectOptions {
  /** Packets sent the moment the WebSocket opens, before `1::` can have been read. */
  readonly onOpen?: readonly string[];
  /** Whether to wait for the server's `1::` before resolving (socket.io 0.9's client does). */
  readonly awaitConnect?: boolean;
  readonly answerHeartbeats?: boolean;
  /** Without it the WebSocket ignores the server's pings, as a dead peer would. */
  readonly autoPong?: boolean;
  /** Certificate to trust on an https URL. */
  readonly ca?: string;
  /** Request headers of the handshake (`X-Forwarded-For`, …). */
  readonly headers?: Record<string, string>;
}

/** The bindings Kazoo-Popup subscribes to, in its order. */
export const KAZOO_POPUP_BINDINGS = [
  'call.CHANNEL_CREATE.*',
  'call.CHANNEL_ANSWER.*',
  'call.CHANNEL_DESTROY.*',
] as const;

const FRAME = '\ufffd';

function splitPayload(body: string): string[] {
  if (!body.startsWith(FRAME)) return body === '' ? [] : [body];
  const packets: string[] = [];
  let at = 0;
  while (at < body.length) {
    const end = body.indexOf(FRAME, at + 1);
    const length = Number(body.slice(at + 1, end));
    packets.push(body.slice(end + 1, end + 1 + length));
    at = end + 1 + length;
  }
  return packets;
}

/**
 * A socket.io 0.9 client written from the protocol (the 0.9 client's Node build does not run on
 * Node 20): handshake over HTTP, then raw `type:id:endpoint:data` frames over a `ws` WebSocket or
 * over long-polling with `fetch`. It answers heartbeats unless told not to, as a stalled
 * client would.
 */
export class LegacyClient {
  readonly events: LegacyEvent[] = [];
  readonly received: string[] = [];
  /** When each packet of `received` arrived (ms since the epoch). */
  readonly receivedAt: number[] = [];
  /** Packets sent before the server's `1::` had been read. */
  readonly sentBeforeConnect: string[] = [];
  /** When the WebSocket opened, or polling started. */
  openedAt = 0;
  answerHeartbeats = true;
  /** The WebSocket's close code and reason, once the server has closed it. */
  closeInfo: { code: number; reason: string } | undefined;
  private waiters: { match: (packet: string) => boolean; resolve: (packet: string) => void }[] = [];
  private socket: WebSocket | undefined;
  private polling = false;
  private nextId = 1;
  private closedFlag = false;

  private constructor(
    private readonly url: string,
    readonly sid: string,
    readonly handshake: string,
    readonly transport: LegacyTransport,
    private readonly ca: string | undefined,
  ) {}

  static async connect(
    url: string,
    transport: LegacyTransport,
    options: LegacyConnectOptions = {},
  ): Promise<LegacyClient> {
    const { status, body: handshake } = await httpRequest(`${url}/socket.io/1/?t=${Date.now()}`, {
      ca: options.ca,
      headers: options.headers,
    });
    if (status !== 200) throw new Error(`0.9 handshake refused: ${status} ${handshake}`);
    const client = new LegacyClient(url, handshake.split(':')[0], handshake, transport, options.ca);
    client.answerHeartbeats = options.answerHeartbeats ?? true;
    if (transport === 'websocket') await client.openWebSocket(options);
    else client.startPolling();
    if (options.awaitConnect ?? true) await client.waitForPacket((packet) => packet === '1::');
    return client;
  }

  /**
   * Kazoo-Popup's session: `GET <url>/socket.io/1/`, the sid before the first `:`, a WebSocket
   * on `/socket.io/1/websocket/<sid>` and, as soon as it opens and without waiting for `1::`,
   * one bare `5:::` subscribe per call binding. It never answers heartbeats; it only watches
   * for the server's.
   */
  static async kazooPopup(
    url: string,
    who: { readonly accountId: string; readonly token: string },
    options: Pick<LegacyConnectOptions, 'autoPong' | 'ca'> = {},
  ): Promise<LegacyClient> {
    const subscribes = KAZOO_POPUP_BINDINGS.map(
      (binding) =>
        `5:::${JSON.stringify({
          name: 'subscribe',
          args: [{ account_id: who.accountId, auth_token: who.token, binding }],
        })}`,
    );
    return LegacyClient.connect(url, 'websocket', {
      ...options,
      onOpen: subscribes,
      awaitConnect: false,
      answerHeartbeats: false,
    });
  }

  get closed(): boolean {
    return this.closedFlag;
  }

  get heartbeats(): number {
    return this.received.filter((packet) => packet === '2::').length;
  }

  /** Emits an event; with `ack`, resolves with the acknowledgement's data. */
  async emit(name: string, payload: unknown, ack = false): Promise<unknown[] | undefined> {
    const id = this.nextId++;
    await this.sendPacket(`5:${id}${ack ? '+' : ''}::${JSON.stringify({ name, args: [payload] })}`);
    if (!ack) return undefined;
    const reply = await this.waitForPacket((packet) => packet.startsWith(`6:::${id}+`));
    return JSON.parse(reply.slice(`6:::${id}+`.length)) as unknown[];
  }

  async sendPacket(packet: string): Promise<void> {
    if (!this.received.includes('1::')) this.sentBeforeConnect.push(packet);
    if (this.socket) {
      this.socket.send(packet);
      return;
    }
    await httpRequest(`${this.url}/socket.io/1/xhr-polling/${this.sid}?t=${Date.now()}`, {
      method: 'POST',
      body: packet,
      headers: { 'Content-Type': 'text/plain;charset=UTF-8' },
      ca: this.ca,
    });
  }

  /** Resolves with the first event (already received or future) named `name` that satisfies `match`. */
  waitFor(
    name: string,
    match: (args: unknown) => boolean = () => true,
    timeoutMs = 5000,
  ): Promise<LegacyEvent> {
    const seen = this.events.find((e) => e.name === name && match(e.args));
    if (seen) return Promise.resolve(seen);
    return this.waitForPacket((packet) => {
      const event = parseEvent(packet);
      return event !== undefined && event.name === name && match(event.args);
    }, timeoutMs).then((packet) => parseEvent(packet) as LegacyEvent);
  }

  waitForPacket(match: (packet: string) => boolean, timeoutMs = 5000): Promise<string> {
    const seen = this.received.find(match);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const waiter = {
        match,
        resolve: (packet: string) => {
          clearTimeout(timer);
          resolve(packet);
        },
      };
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== waiter);
        reject(new Error(`no matching socket.io 0.9 packet within ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiters.push(waiter);
    });
  }

  named(name: string): unknown[] {
    return this.events.filter((e) => e.name === name).map((e) => e.args);
  }

  /** WebSocket transport: stops reading the TCP socket, as a client that no longer reads. */
  pauseReading(): void {
    this.tcp().pause();
  }

  resumeReading(): void {
    this.tcp().resume();
  }

  private tcp(): Socket {
    if (!this.socket) throw new Error('only a WebSocket session has a socket to pause');
    return (this.socket as unknown as { _socket: Socket })._socket;
  }

  /**
   * xhr-polling: sends no more polls once the one under way is answered, as a client that no
   * longer reads; `sendPacket` still posts.
   */
  stopPolling(): void {
    this.polling = false;
  }

  close(): void {
    this.polling = false;
    this.socket?.close();
    this.closedFlag = true;
  }

  private async openWebSocket({
    onOpen = [],
    autoPong = true,
  }: LegacyConnectOptions): Promise<void> {
    const socket = new WebSocket(
      `${this.url.replace(/^http/, 'ws')}/socket.io/1/websocket/${this.sid}`,
      { autoPong, ...(this.ca !== undefined ? { ca: this.ca } : {}) },
    );
    this.socket = socket;
    socket.on('message', (data: Buffer) => this.receive(data.toString('utf8')));
    socket.on('close', (code, reason) => {
      this.closeInfo = { code, reason: reason.toString() };
      this.closedFlag = true;
    });
    await new Promise<void>((resolve, reject) => {
      socket.once('open', () => {
        this.openedAt = Date.now();
        // Synchronously in the open handler: ws reads no frame before it returns.
        for (const packet of onOpen) void this.sendPacket(packet);
        resolve();
      });
      socket.once('error', reject);
    });
  }

  private startPolling(): void {
    this.polling = true;
    this.openedAt = Date.now();
    void (async () => {
      while (this.polling) {
        try {
          const { body } = await httpRequest(
            `${this.url}/socket.io/1/xhr-polling/${this.sid}?t=${Date.now()}`,
            { ca: this.ca },
          );
          for (const packet of splitPayload(body)) this.receive(packet);
          if (body.startsWith('7:::') || body === '0::') break;
        } catch {
          break;
        }
      }
      this.closedFlag = true;
    })();
  }

  private receive(packet: string): void {
    this.received.push(packet);
    this.receivedAt.push(Date.now());
    if (packet === '0::') this.closedFlag = true;
    // A heartbeat answer that finds the server gone (a poll answered as it shut down) is moot.
    if (packet === '2::' && this.answerHeartbeats && !this.closedFlag) {
      this.sendPacket('2::').catch(() => undefined);
    }
    const event = parseEvent(packet);
    if (event) this.events.push(event);
    const ready = this.waiters.filter((w) => w.match(packet));
    this.waiters = this.waiters.filter((w) => !w.match(packet));
    ready.forEach((w) => w.resolve(packet));
  }
}

function parseEvent(packet: string): LegacyEvent | undefined {
  if (!packet.startsWith('5:::')) return undefined;
  return JSON.parse(packet.slice(4)) as LegacyEvent;
}
