import 'reflect-metadata';
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { Logger } from '@nestjs/common';
import { InvalidEnvironmentError, loadEnvironment } from './config/environment';
import { startGateway, stopOnSignals } from './bootstrap';
import { httpScheme } from './config/tls-files';

async function main(): Promise<void> {
  let environment;
  try {
    environment = loadEnvironment(process.env);
  } catch (error) {
    if (error instanceof InvalidEnvironmentError) {
      process.stderr.write(`${error.message}\n`);
      process.exit(78); // EX_CONFIG
    }
    throw error;
  }
  const app = await startGateway(environment);
  stopOnSignals(app, environment);
  // The bound address itself: Nest's getUrl() says 127.0.0.1 for a server on 0.0.0.0.
  const { address, port, family } = (app.getHttpServer() as Server).address() as AddressInfo;
  const host = family === 'IPv6' ? `[${address}]` : address;
  new Logger('Blackhole').log(`listening on ${httpScheme(environment)}://${host}:${port}`);
}

/** Errors of `listen` an operator fixes in the configuration; they need no stack trace. */
const LISTEN_ERRORS: Record<string, string> = {
  EADDRINUSE: 'is already in use',
  EACCES: 'needs privileges this process lacks',
  EADDRNOTAVAIL: 'names an address this host does not have',
};

main().catch((error: unknown) => {
  const { code, address, port } = (error ?? {}) as {
    code?: string;
    address?: string;
    port?: number;
  };
  const listenProblem = code === undefined ? undefined : LISTEN_ERRORS[code];
  const description =
    listenProblem !== undefined
      ? `${address ?? 'HOST'}:${port ?? 'PORT'} ${listenProblem} (${code}); set HOST or PORT`
      : error instanceof Error
        ? error.stack
        : String(error);
  process.stderr.write(`Blackhole failed to start: ${description}\n`);
  process.exit(1);
});
