import type { INestApplication } from '@nestjs/common';
import { Logger } from '@nestjs/common';
import { dirname, join } from 'node:path';
import type { Server as TlsServer } from 'node:tls';
import { NestFactory } from '@nestjs/core';
import type { NestExpressApplication } from '@nestjs/platform-express';
import { AppModule, type AppOptions } from './app.module';
import { type Environment } from './config/environment';
import { NodeIdentity } from './config/node-identity';
import { httpScheme, readTlsCredentials, tlsContextProblem } from './config/tls-files';
import { GatewayIoAdapter } from './gateways/socket-io/socket-io.adapter';
import { securityHeaders } from './http/security-headers';
import { createLogger, createRootLogger } from './logging/gateway-logger';
import { httpLogging } from './logging/http-logging';
import { requestIds } from './logging/request-id';

/** `public/` at the project root, from `src/` and from `dist/` alike. */
const PUBLIC_DIR = join(__dirname, '..', 'public');
/** The socket.io 4 browser client shipped inside the socket.io server package. */
const SOCKET_IO_CLIENT_DIR = join(
  dirname(require.resolve('socket.io/package.json')),
  'client-dist',
);

/** Builds and starts the gateway; shared by `main.ts`, the demo and the end-to-end tests. */
export async function startGateway(
  environment: Environment,
  options: Omit<AppOptions, 'environment'> = {},
): Promise<INestApplication> {
  const node = new NodeIdentity();
  const jsonLogs =
    environment.LOG_FORMAT === 'json' ? createRootLogger(environment, node) : undefined;
  const app = await NestFactory.create<NestExpressApplication>(
    AppModule.register({ environment, node, ...options }),
    {
      logger: createLogger(environment, jsonLogs),
      // Closing the server then cuts keep-alive and upgraded connections instead of waiting for
      // them; clients were told to go before (GatewayShutdown).
      forceCloseConnections: true,
      // An https.Server in place of the http one: Express, engine.io, the socket.io 0.9 endpoint
      // and Kazoo 4.x's WebSocket all hang off it, so every protocol is TLS on the one port.
      httpsOptions: readTlsCredentials(environment),
    },
  );
  app.useWebSocketAdapter(new GatewayIoAdapter(app));
  // Nothing to gain from telling the open internet which framework answers.
  app.disable('x-powered-by');
  app.use(requestIds);
  if (jsonLogs !== undefined) app.use(...httpLogging(jsonLogs));
  app.use(securityHeaders);
  // The console page and the browser clients it and Kazoo 3.x's example page load, served locally.
  app.useStaticAssets(PUBLIC_DIR, { index: 'index.html', maxAge: '1h' });
  app.useStaticAssets(SOCKET_IO_CLIENT_DIR, { prefix: '/vendor/socket.io-4/', maxAge: '1h' });
  // Nest hands extra arguments on to Node's `server.listen(port, host, backlog)` (the Express
  // adapter spreads them); only its types stop at the host.
  const listen = app.listen.bind(app) as unknown as (
    port: number,
    host: string,
    backlog: number,
  ) => Promise<unknown>;
  await listen(environment.PORT, environment.HOST, environment.LISTEN_BACKLOG);
  return app;
}

/**
 * Stops the gateway on SIGTERM and SIGINT (`docker stop`, Ctrl+C) and exits 0: clients are told
 * on their protocols, consumers cancelled, the server closed, and `alsoStop` (the demo's own
 * pieces) awaited; whatever still hangs when `SHUTDOWN_GRACE_S` runs out is left behind and
 * the process exits 0 all the same. A second signal exits at once.
 */
export function stopOnSignals(
  app: INestApplication,
  environment: Environment,
  alsoStop: () => Promise<unknown> = () => Promise.resolve(),
): void {
  const logger = new Logger('Blackhole');
  let stopping = false;
  const stop = (signal: NodeJS.Signals): void => {
    if (stopping) {
      logger.warn(`${signal} again: exiting now`);
      process.exit(0);
    }
    stopping = true;
    const graceS = environment.SHUTDOWN_GRACE_S;
    logger.log(`${signal}: stopping (within ${graceS} s)`);
    setTimeout(() => {
      logger.warn(`still stopping after ${graceS} s (SHUTDOWN_GRACE_S); exiting now`);
      process.exit(0);
    }, graceS * 1000).unref();
    Promise.allSettled([app.close(), alsoStop()])
      .then(([closed]) => {
        if (closed.status === 'rejected') {
          const reason: unknown = closed.reason;
          logger.error(
            `stopping failed: ${reason instanceof Error ? reason.message : String(reason)}`,
          );
        }
        logger.log('stopped');
        process.exit(0);
      })
      .catch(() => process.exit(0));
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  // SIGHUP would end the process by default; operators send it to reload a renewed certificate.
  process.on('SIGHUP', () => reloadCertificate(app, environment, logger));
}

/**
 * Reads `TLS_CERT_FILE`/`TLS_KEY_FILE` again and serves new connections with them; open
 * connections keep theirs. Files that do not make a usable context leave the old one in place.
 */
export function reloadCertificate(
  app: INestApplication,
  environment: Environment,
  logger: Logger = new Logger('Blackhole'),
): boolean {
  if (httpScheme(environment) !== 'https') {
    logger.log('SIGHUP: no TLS certificate to reload (TLS_CERT_FILE is not set)');
    return false;
  }
  const problem = tlsContextProblem(environment);
  const credentials = problem === undefined ? readTlsCredentials(environment) : undefined;
  if (credentials === undefined) {
    logger.error(`SIGHUP: certificate not reloaded, the old one stays: ${problem ?? 'no files'}`);
    return false;
  }
  (app.getHttpServer() as TlsServer).setSecureContext(credentials);
  logger.log('SIGHUP: TLS certificate reloaded for new connections');
  return true;
}
