import type { Type } from '@nestjs/common';
import type { Clock } from '../../src/core/clock';
import { KazooPublisher } from './amqp';
import { EventClient, type ClientVersion, type ConnectOptions } from './clients';
import { FakeCrossbar } from './fake-crossbar';
import { startTestGateway, type TestGateway } from './start-app';
import { KazooWsClient } from './ws-client';

export interface StackOptions {
  readonly env?: Record<string, string>;
  readonly features?: readonly Type[];
  readonly clock?: Clock;
}

/**
 * Everything an end-to-end suite needs: a Crossbar stand-in, the gateway on the real RabbitMQ
 * (already consuming), a Kazoo-style publisher, and clients that are closed after each test.
 */
export class Stack {
  private readonly clients: { close(): void }[] = [];

  private constructor(
    readonly crossbar: FakeCrossbar,
    readonly gateway: TestGateway,
    readonly publisher: KazooPublisher,
  ) {}

  static async start(options: StackOptions = {}): Promise<Stack> {
    const crossbar = await FakeCrossbar.start();
    const gateway = await startTestGateway(
      { CROSSBAR_URL: crossbar.url, ...options.env },
      options.features,
      options.clock,
    );
    const publisher = await KazooPublisher.connect();
    await gateway.consuming();
    return new Stack(crossbar, gateway, publisher);
  }

  /**
   * A new account (a child of `parentId` when given) and a token for it, valid for `tokenTtlS`
   * of real time: a suite that moves its clock months ahead needs a token that lives that long,
   * or the gateway rightly drops its subscriptions at the token's expiry.
   */
  account(parentId?: string, tokenTtlS?: number): { accountId: string; token: string } {
    const accountId = this.crossbar.addAccount(undefined, parentId);
    return { accountId, token: this.crossbar.issueToken(accountId, tokenTtlS) };
  }

  async connect(version: ClientVersion = 'v4', options?: ConnectOptions): Promise<EventClient> {
    const client = await EventClient.connect(version, this.gateway.url, {
      ca: this.gateway.ca,
      ...options,
    });
    this.clients.push(client);
    return client;
  }

  /** A plain-WebSocket client of Kazoo 4.x's protocol (monster-ui's). */
  async connectWs(
    path = '/',
    options?: { autoPong?: boolean; headers?: Record<string, string> },
  ): Promise<KazooWsClient> {
    const client = await KazooWsClient.connect(this.gateway.url, path, {
      ca: this.gateway.ca,
      ...options,
    });
    this.clients.push(client);
    return client;
  }

  closeClients(): void {
    this.clients.splice(0).forEach((client) => client.close());
  }

  async close(): Promise<void> {
    this.closeClients();
    await this.publisher.close();
    await this.gateway.close();
    await this.crossbar.stop();
  }
}
