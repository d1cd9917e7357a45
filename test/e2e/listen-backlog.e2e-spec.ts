import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { startTestGateway, type TestGateway } from '../support/start-app';

jest.setTimeout(60_000);

/** How long a connect may take before it counts as refused by a full accept queue. */
const CONNECT_TIMEOUT_MS = 2000;

/**
 * Opens up to `attempts` TCP connections to `port`, one after the other, from another process,
 * and answers how many the kernel completed before one hung. The call blocks this process's
 * event loop, so the gateway in it accepts none of them meanwhile: they stay in its listen
 * backlog, as a reconnect burst does while a node is busy.
 */
function connectionsQueuedWhileBusy(port: number, attempts: number): number {
  const script = `
    const net = require('node:net');
    const [port, attempts, timeoutMs] = process.argv.slice(1).map(Number);
    const sockets = [];
    const next = () => {
      if (sockets.length === attempts) return done();
      const socket = net.connect(port, '127.0.0.1');
      const timer = setTimeout(() => { socket.destroy(); done(); }, timeoutMs);
      socket.once('connect', () => { clearTimeout(timer); sockets.push(socket); next(); });
      socket.once('error', () => { clearTimeout(timer); done(); });
    };
    const done = () => { process.stdout.write(String(sockets.length)); sockets.forEach((s) => s.destroy()); process.exit(0); };
    next();`;
  const child = spawnSync(
    process.execPath,
    ['-e', script, String(port), String(attempts), String(CONNECT_TIMEOUT_MS)],
    { encoding: 'utf8', timeout: 30_000 },
  );
  if (child.status !== 0) throw new Error(`the connecting process failed: ${child.stderr}`);
  return Number(child.stdout);
}

function portOf(gateway: TestGateway): number {
  return Number(new URL(gateway.url).port);
}

describe('the listen backlog (LISTEN_BACKLOG)', () => {
  const gateways: TestGateway[] = [];
  afterEach(async () => {
    await Promise.all(gateways.splice(0).map((gateway) => gateway.close()));
  });

  it('is what the kernel queues for a node that accepts nothing for a moment', async () => {
    const gateway = await startTestGateway({ LISTEN_BACKLOG: '50' });
    gateways.push(gateway);
    await gateway.consuming();
    // Linux queues one more than the backlog; the next SYN is dropped until the node accepts.
    expect(connectionsQueuedWhileBusy(portOf(gateway), 200)).toBe(51);
    // And the node goes on serving once it accepts again.
    await gateway.consuming();
  });

  it("by default holds a burst of 1,000 reconnects, which Node's own backlog (511) would drop", async () => {
    const gateway = await startTestGateway({});
    gateways.push(gateway);
    await gateway.consuming();
    // The kernel caps any backlog at net.core.somaxconn (4096 on current kernels).
    const somaxconn = Number(readFileSync('/proc/sys/net/core/somaxconn', 'utf8'));
    const burst = Math.min(1000, somaxconn);
    expect(connectionsQueuedWhileBusy(portOf(gateway), burst)).toBe(burst);
    // And the node goes on serving once it accepts again.
    await gateway.consuming();
  });
});
