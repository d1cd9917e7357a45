import { createServer, connect, type Server, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';

/**
 * A TCP relay in front of RabbitMQ that can be closed and opened, so a test can make the broker
 * unreachable for one gateway without stopping the broker every other suite uses.
 */
export class TcpGate {
  private readonly sockets = new Set<Socket>();
  private readonly upstreams = new Map<Socket, Socket>();
  /** Bytes from clients held back while frozen, per client connection, in order. */
  private held: Map<Socket, Buffer[]> | undefined;
  private open = false;

  private constructor(
    private readonly server: Server,
    private readonly target: { host: string; port: number },
  ) {}

  static async start(target: { host: string; port: number }): Promise<TcpGate> {
    const server = createServer();
    const gate = new TcpGate(server, target);
    server.on('connection', (socket) => gate.accept(socket));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return gate;
  }

  get port(): number {
    return (this.server.address() as AddressInfo).port;
  }

  /** Lets connections through from now on. */
  openGate(): void {
    this.open = true;
  }

  /** Refuses new connections and cuts the current ones, as a broker outage would. */
  closeGate(): void {
    this.open = false;
    for (const socket of this.sockets) socket.destroy();
  }

  /**
   * Holds back everything clients send from now on, without closing anything: the broker sees
   * nothing of what the gateway asks until `thaw()`, as with a broker that is slow to answer.
   */
  freeze(): void {
    this.held ??= new Map();
  }

  /** Forwards what was held back, in order, and lets bytes through again. */
  thaw(): void {
    const held = this.held;
    this.held = undefined;
    for (const [client, chunks] of held ?? []) {
      const upstream = this.upstreams.get(client);
      for (const chunk of chunks) upstream?.write(chunk);
    }
  }

  async stop(): Promise<void> {
    this.closeGate();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private accept(client: Socket): void {
    if (!this.open) {
      client.destroy();
      return;
    }
    const upstream = connect(this.target.port, this.target.host);
    for (const socket of [client, upstream]) {
      this.sockets.add(socket);
      socket.on('close', () => this.sockets.delete(socket));
      socket.on('error', () => socket.destroy());
    }
    this.upstreams.set(client, upstream);
    client.on('data', (chunk: Buffer) => {
      const held = this.held;
      if (!held) {
        upstream.write(chunk);
        return;
      }
      const chunks = held.get(client) ?? [];
      chunks.push(chunk);
      held.set(client, chunks);
    });
    upstream.pipe(client);
    client.on('close', () => {
      upstream.destroy();
      this.upstreams.delete(client);
    });
    upstream.on('close', () => client.destroy());
  }
}
