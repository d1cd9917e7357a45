import 'reflect-metadata';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { INestApplication } from '@nestjs/common';
import { startGateway, stopOnSignals } from '../bootstrap';
import {
  InvalidEnvironmentError,
  loadEnvironment,
  type EnvironmentSource,
} from '../config/environment';
import { httpScheme } from '../config/tls-files';
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

/**
 * `DEMO_CROSSBAR_PORT`: where the stand-in listens; 0 (the default) picks a free port.
 * Returns the port, or the problem in the words `loadEnvironment` uses.
 */
function crossbarPort(source: EnvironmentSource): number | string {
  const value = source.DEMO_CROSSBAR_PORT?.trim() ?? '';
  if (value === '') return 0;
  const port = /^\d{1,5}$/.test(value) ? Number(value) : NaN;
  return port <= 65535
    ? port
    : `DEMO_CROSSBAR_PORT=${JSON.stringify(value)}: DEMO_CROSSBAR_PORT must be a port number (0 to 65535)`;
}

/** Checks every variable the demo reads before anything starts, naming each bad one. */
function checkEnvironment(source: EnvironmentSource): number {
  const port = crossbarPort(source);
  const problems = typeof port === 'string' ? [port] : [];
  try {
    loadEnvironment(source);
  } catch (error) {
    if (!(error instanceof InvalidEnvironmentError)) throw error;
    problems.push(...error.problems);
  }
  if (problems.length > 0 || typeof port === 'string') {
    process.stderr.write(`${new InvalidEnvironmentError(problems).message}\n`);
    process.exit(78); // EX_CONFIG
  }
  return port;
}

/** The host a browser on this machine reaches the gateway at. */
function browserHost(listenHost: string): string {
  if (['0.0.0.0', '::', '127.0.0.1', '::1', 'localhost'].includes(listenHost)) return 'localhost';
  return listenHost.includes(':') ? `[${listenHost}]` : listenHost;
}

async function main(): Promise<void> {
  const port = checkEnvironment(process.env);
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

  // The gateway stops as `npm start`'s does; the simulator and the stand-in stop with it.
  stopOnSignals(app, environment, () => Promise.allSettled([simulator.stop(), standIn.stop()]));

  const { port: listening } = (app.getHttpServer() as Server).address() as AddressInfo;
  const base = `${httpScheme(environment)}://${browserHost(environment.HOST)}:${listening}`;
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
