import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { copyFile, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { AMQP_URL } from './amqp';
import { releaseReplayLog, replayLogDefaults } from './replay-log-mode';
import { waitUntil } from './wait';

const ROOT = join(__dirname, '..', '..');

/**
 * A build of the gateway of its own, so a suite never races another one over `dist/`; beside it
 * a copy of `package.json`, where the build reads its version as `dist/` does.
 */
export class GatewayBuild {
  private constructor(readonly root: string) {}

  static async make(name: string): Promise<GatewayBuild> {
    const root = join(ROOT, 'test-output', `${name}-${process.pid}`);
    await promisify(execFile)(
      process.execPath,
      [
        join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'),
        '-p',
        'tsconfig.build.json',
        '--outDir',
        join(root, 'dist'),
        '--incremental',
        'false',
      ],
      { cwd: ROOT },
    );
    await copyFile(join(ROOT, 'package.json'), join(root, 'package.json'));
    return new GatewayBuild(root);
  }

  get main(): string {
    return join(this.root, 'dist', 'main.js');
  }

  async remove(): Promise<void> {
    await rm(this.root, { recursive: true, force: true });
  }
}

/** One gateway process, started from a build as an operator starts it. */
export class GatewayProcess {
  /** Exit code, or the signal that ended it. */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  private log = '';

  private constructor(
    readonly url: string,
    private readonly child: ChildProcess,
    private readonly replayStream: string | undefined,
  ) {
    child.stdout?.on('data', (chunk: Buffer) => (this.log += chunk.toString()));
    child.stderr?.on('data', (chunk: Buffer) => (this.log += chunk.toString()));
    this.exited = new Promise((resolve) =>
      child.once('exit', (code, signal) => resolve({ code, signal })),
    );
  }

  static async start(build: GatewayBuild, env: Record<string, string>): Promise<GatewayProcess> {
    const port = await freePort();
    // Per-node queues unless a suite tests the replay log or the stream project runs it.
    const replayLog = replayLogDefaults(env);
    const child = spawn(process.execPath, [build.main], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: {
        ...process.env,
        PORT: String(port),
        HOST: '127.0.0.1',
        AMQP_URL,
        LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'warn',
        ...replayLog.defaults,
        ...env,
      },
    });
    const gateway = new GatewayProcess(`http://127.0.0.1:${port}`, child, replayLog.stream);
    await waitUntil(
      `the gateway on ${port} to consume`,
      async () =>
        (await fetch(`${gateway.url}/health`).catch(() => undefined))?.status === 200
          ? true
          : undefined,
      30_000,
    ).catch((error: Error) => {
      throw new Error(`${error.message}\n${gateway.log}`);
    });
    return gateway;
  }

  /** Everything the process wrote to stdout and stderr so far. */
  get output(): string {
    return this.log;
  }

  signal(signal: NodeJS.Signals): void {
    this.child.kill(signal);
  }

  /** SIGTERM, then SIGKILL if it has not exited in time; then its own replay log goes. */
  async stop(): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null) {
      this.child.kill('SIGTERM');
      const timer = setTimeout(() => this.child.kill('SIGKILL'), 30_000);
      await this.exited;
      clearTimeout(timer);
    }
    await releaseReplayLog(this.replayStream);
  }
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => resolve(typeof address === 'object' && address ? address.port : 0));
    });
  });
}
