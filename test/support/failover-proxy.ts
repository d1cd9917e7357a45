import { connect, createServer, type Server, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';

/**
 * The simplest load balancer a fleet test needs: each new TCP connection goes to the first
 * backend that accepts it, in order, so clients of a node that stopped land on the next one
 * when they reconnect.
 */
export class FailoverProxy {
  private readonly sockets = new Set<Socket>();

  private constructor(
    private readonly server: Server,
    private readonly backends: readonly { host: string; port: number }[],
  ) {}

  static async start(backendUrls: readonly string[]): Promise<FailoverProxy> {
    const backends = backendUrls.map((url) => {
      const { hostname, port } = new URL(url);
      return { host: hostname, port: Number(port) };
    });
    const server = createServer();
    const proxy = new FailoverProxy(server, backends);
    server.on('connection', (socket) => proxy.accept(socket, 0));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return proxy;
  }

  get url(): string {
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  private accept(client: Socket, backend: number): void {
    if (backend >= this.backends.length) {
      client.destroy();
      return;
    }
    client.pause();
    const upstream = connect(this.backends[backend]);
    let connected = false;
    upstream.once('error', () => {
      // Refused (the node is gone): the next backend. Failed later: the client's connection ends.
      if (!connected) this.accept(client, backend + 1);
    });
    upstream.once('connect', () => {
      connected = true;
      this.sockets.add(client).add(upstream);
      client.on('error', () => upstream.destroy());
      upstream.on('error', () => client.destroy());
      client.once('close', () => {
        upstream.destroy();
        this.sockets.delete(client);
      });
      upstream.once('close', () => {
        client.destroy();
        this.sockets.delete(upstream);
      });
      client.pipe(upstream);
      upstream.pipe(client);
      client.resume();
    });
  }

  async stop(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
