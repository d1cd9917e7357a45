import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { Injectable, OnApplicationBootstrap } from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import { LegacySocketIoServer } from './socket-io-legacy/legacy-socket-io.server';
import { WsGateway } from './ws/ws.gateway';

/** socket.io 2.x–4.x (Engine.IO 3 and 4) lives under this path. */
const SOCKET_IO_PATH = '/socket.io/';

type RequestListener = (request: IncomingMessage, response: ServerResponse) => void;
type UpgradeListener = (request: IncomingMessage, socket: Duplex, head: Buffer) => void;

/**
 * Every client protocol on one port. By bootstrap time Express and engine.io (socket.io 4) are
 * attached to the HTTP server; this takes their places and routes by path: `/socket.io/1/` to
 * the socket.io 0.9 endpoint (engine.io would answer it "Transport unknown"), the rest of
 * `/socket.io/` to engine.io, other upgrades to Kazoo 4.x's WebSocket protocol, other requests
 * to Express.
 */
@Injectable()
export class TransportRouter implements OnApplicationBootstrap {
  constructor(
    private readonly adapterHost: HttpAdapterHost,
    private readonly legacy: LegacySocketIoServer,
    private readonly ws: WsGateway,
  ) {}

  onApplicationBootstrap(): void {
    const server = this.adapterHost.httpAdapter.getHttpServer() as Server;

    const requestListeners = server.listeners('request') as RequestListener[];
    server.removeAllListeners('request');
    server.on('request', (request: IncomingMessage, response: ServerResponse) => {
      if (this.legacy.handles(request.url)) return this.legacy.handleRequest(request, response);
      for (const listener of requestListeners) listener.call(server, request, response);
    });

    const upgradeListeners = server.listeners('upgrade') as UpgradeListener[];
    server.removeAllListeners('upgrade');
    server.on('upgrade', (request: IncomingMessage, socket: Duplex, head: Buffer) => {
      if (this.legacy.handles(request.url)) return this.legacy.handleUpgrade(request, socket, head);
      if ((request.url ?? '/').startsWith(SOCKET_IO_PATH)) {
        for (const listener of upgradeListeners) listener.call(server, request, socket, head);
        return;
      }
      this.ws.handleUpgrade(request, socket, head);
    });
  }
}
