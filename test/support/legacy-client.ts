import { WebSocket } from 'ws';

export type LegacyTransport = 'websocket' | 'xhr-polling';

export interface LegacyEvent {
  readonly name: string;
  readonly args: unknown;
}

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
  answerHeartbeats = true;
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
  ) {}

  static async connect(url: string, transport: LegacyTransport): Promise<LegacyClient> {
    const response = await fetch(`${url}/socket.io/1/?t=${Date.now()}`);
    const handshake = await response.text();
    const client = new LegacyClient(url, handshake.split(':')[0], handshake, transport);
    if (transport === 'websocket') await client.openWebSocket();
    else client.startPolling();
    await client.waitForPacket((packet) => packet === '1::');
    return client;
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
    if (this.socket) {
      this.socket.send(packet);
      return;
    }
    const response = await fetch(
      `${this.url}/socket.io/1/xhr-polling/${this.sid}?t=${Date.now()}`,
      {
        method: 'POST',
        body: packet,
        headers: { 'Content-Type': 'text/plain;charset=UTF-8' },
      },
    );
    await response.text();
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

  close(): void {
    this.polling = false;
    this.socket?.close();
    this.closedFlag = true;
  }

  private async openWebSocket(): Promise<void> {
    const socket = new WebSocket(
      `${this.url.replace(/^http/, 'ws')}/socket.io/1/websocket/${this.sid}`,
    );
    this.socket = socket;
    socket.on('message', (data: Buffer) => this.receive(data.toString('utf8')));
    socket.on('close', () => (this.closedFlag = true));
    await new Promise<void>((resolve, reject) => {
      socket.once('open', () => resolve());
      socket.once('error', reject);
    });
  }

  private startPolling(): void {
    this.polling = true;
    void (async () => {
      while (this.polling) {
        try {
          const response = await fetch(
            `${this.url}/socket.io/1/xhr-polling/${this.sid}?t=${Date.now()}`,
          );
          const body = await response.text();
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
    if (packet === '0::') this.closedFlag = true;
    if (packet === '2::' && this.answerHeartbeats) void this.sendPacket('2::');
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
