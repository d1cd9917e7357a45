import { readFileSync } from 'node:fs';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { INestApplication, Type } from '@nestjs/common';
import { QueueBinder } from '../../src/amqp/queue-binder';
import { startGateway } from '../../src/bootstrap';
import { loadEnvironment } from '../../src/config/environment';
import { httpScheme } from '../../src/config/tls-files';
import { NodeIdentity } from '../../src/config/node-identity';
import type { Clock } from '../../src/core/clock';
import type { HealthBody } from '../../src/http/health.controller';
import { AMQP_URL } from './amqp';
import { waitUntil } from './wait';
import { httpRequest } from './http-request';
import { releaseReplayLog, replayLogDefaults } from './replay-log-mode';

export interface TestGateway {
  readonly app: INestApplication;
  /** `http://127.0.0.1:<port>`, or `https://…` when started with `TLS_CERT_FILE`. */
  readonly url: string;
  /** With TLS, the certificate clients trust: tests use a self-signed one, its own CA. */
  readonly ca?: string;
  /** Prefix of every queue this node declares on RabbitMQ. */
  readonly queuePrefix: string;
  readonly binder: QueueBinder;
  health(): Promise<{ status: number; body: HealthBody }>;
  /** Resolves once `/health` answers 200: the node consumes every exchange (or the log). */
  consuming(): Promise<void>;
  close(): Promise<void>;
}

/** Starts the real application on a free port against the local RabbitMQ and a Crossbar stand-in. */
export async function startTestGateway(
  env: Record<string, string>,
  features?: readonly Type[],
  clock?: Clock,
): Promise<TestGateway> {
  // Per-node queues unless a suite tests the replay log (test/e2e/replay.e2e-spec.ts) or the
  // stream project runs it (a stream of this gateway's own, deleted when it closes).
  const replayLog = replayLogDefaults(env);
  const environment = loadEnvironment({
    PORT: '0',
    HOST: '127.0.0.1',
    AMQP_URL,
    AMQP_RECONNECT_S: '1',
    LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'error',
    ...replayLog.defaults,
    ...env,
  });
  const app = await startGateway(environment, { features, clock }).catch(async (error) => {
    await releaseReplayLog(replayLog.stream);
    throw error;
  });
  const address = (app.getHttpServer() as Server).address() as AddressInfo;
  const url = `${httpScheme(environment)}://127.0.0.1:${address.port}`;
  const ca =
    environment.TLS_CERT_FILE !== undefined
      ? readFileSync(environment.TLS_CERT_FILE, 'utf8')
      : undefined;
  const node = app.get(NodeIdentity);
  const health = async (): Promise<{ status: number; body: HealthBody }> => {
    const response = await httpRequest(`${url}/health`, { ca });
    return { status: response.status, body: JSON.parse(response.body) as never };
  };
  return {
    app,
    url,
    ca,
    queuePrefix: `blackhole.${node.id}.`,
    binder: app.get(QueueBinder),
    health,
    async consuming() {
      await waitUntil('the gateway to consume', async () =>
        (await health()).status === 200 ? true : undefined,
      );
    },
    async close() {
      try {
        await app.close();
      } finally {
        await releaseReplayLog(replayLog.stream);
      }
    },
  };
}
