import 'reflect-metadata';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { INestApplication } from '@nestjs/common';
import { startGateway } from '../bootstrap';
import {
  InvalidEnvironmentError,
  loadEnvironment,
  type EnvironmentSource,
} from '../config/environment';
import { CrossbarStandIn } from './crossbar-stand-in';
import { EventSimulator } from './event-simulator';
import type { KazooAccount } from './kazoo-events';

/**
 * `npm run demo`: the gateway against a Crossbar stand-in, with simulated Kazoo traffic for two
 * sibling accounts published into the configured RabbitMQ. The console page, opened with the
 * printed token, shows the demo account's events live and never the other account's.
 * `npm start` (src/main.ts) never loads this file or anything in src/demo.
 */

const TOKEN_TTL_S = 24 * 60 * 60;

const ACCOUNTS = [
  { name: 'Demo Telecom', realm: 'demo-telecom.sip.example.com' },
  { name: 'Other Tenant', realm: 'other-tenant.sip.example.com' },
] as const;

/** `DEMO_CROSSBAR_PORT`: where the stand-in listens; 0 (the default) picks a free port. */
function crossbarPort(source: EnvironmentSource): number {
  const value = source.DEMO_CROSSBAR_PORT?.trim() ?? '';
  if (value === '') return 0;
  const port = /^\d+$/.test(value) ? Number(value) : NaN;
  if (!Number.isInteger(port) || port > 65535) {
    throw new InvalidEnvironmentError([
      `DEMO_CROSSBAR_PORT=${JSON.stringify(value)}: DEMO_CROSSBAR_PORT must be a port number (0 to 65535)`,
    ]);
  }
  return port;
}

/** The host a browser on this machine reaches the gateway at. */
function browserHost(listenHost: string): string {
  if (['0.0.0.0', '::', '127.0.0.1', '::1', 'localhost'].includes(listenHost)) return 'localhost';
  return listenHost.includes(':') ? `[${listenHost}]` : listenHost;
}

async function main(): Promise<void> {
  let port: number;
  try {
    port = crossbarPort(process.env);
    // Validated before anything starts; validated again below with the stand-in's URL.
    loadEnvironment(process.env);
  } catch (error) {
    if (error instanceof InvalidEnvironmentError) {
      process.stderr.write(`${error.message}\n`);
      process.exit(78); // EX_CONFIG
    }
    throw error;
  }

  const standIn = await CrossbarStandIn.start(port);
  const [demo, other]: KazooAccount[] = ACCOUNTS.map(({ name, realm }) => ({
    id: standIn.addAccount(undefined, undefined, { name, realm }),
    name,
    realm,
  }));
  const token = standIn.issueToken(demo.id, TOKEN_TTL_S);

  const environment = loadEnvironment({ ...process.env, CROSSBAR_URL: standIn.url });
  let app: INestApplication;
  try {
    app = await startGateway(environment);
  } catch (error) {
    await standIn.stop();
    throw error;
  }
  const simulator = new EventSimulator({ amqpUrl: environment.AMQP_URL, accounts: [demo, other] });
  simulator.start();

  // Nest's shutdown hooks (enabled by startGateway) close the gateway on these signals and then
  // re-raise them; this handler stops the demo's own pieces alongside, once.
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      void Promise.allSettled([simulator.stop(), standIn.stop()]);
    });
  }

  const { port: listening } = (app.getHttpServer() as Server).address() as AddressInfo;
  const base = `http://${browserHost(environment.HOST)}:${listening}`;
  const consoleUrl = `${base}/?account_id=${demo.id}&auth_token=${encodeURIComponent(token)}`;
  process.stdout.write(
    [
      '',
      'Blackhole demo is running',
      `  console:   ${consoleUrl}`,
      `  account:   ${demo.id}  (${demo.name})`,
      `  token:     ${token}`,
      `  other account (never shown in the console): ${other.id}  (${other.name})`,
      `  crossbar:  ${standIn.url} (stand-in)`,
      'Press Ctrl+C to stop.',
      '',
      '',
    ].join('\n'),
  );
}

main().catch((error: unknown) => {
  process.stderr.write(
    `Blackhole demo failed to start: ${error instanceof Error ? error.stack : String(error)}\n`,
  );
  process.exit(1);
});
