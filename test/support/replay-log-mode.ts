import { randomBytes } from 'node:crypto';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { deleteReplayLog } from './amqp';

/**
 * The e2e suites run twice: with per-node queues (`e2e`) and with the product's default, the
 * replay log on (`e2e-stream`, whose setup file sets this variable).
 */
export const REPLAY_LOG_MODE = 'BLACKHOLE_TEST_REPLAY_LOG';

/** Set by the stream project's global setup: the streams of one run, swept at its end. */
export const REPLAY_LOG_RUN = 'BLACKHOLE_TEST_REPLAY_RUN';

const STREAM_PREFIX = 'blackhole.test-replay.';

/** Streams this test file's gateways declared and have not deleted yet. */
const open = new Set<string>();

export function replayLogOn(): boolean {
  return process.env[REPLAY_LOG_MODE] === 'on';
}

/** Prefix of every stream one run of the stream project declares. */
export function runStreamPrefix(run: string): string {
  return `${STREAM_PREFIX}${run}.`;
}

/**
 * What a gateway started by the test support gets unless the suite says otherwise, and the
 * stream it owns (to delete when it closes). A suite that names `REPLAY_WINDOW_S` or
 * `REPLAY_STREAM` chose its mode and owns its stream.
 */
export function replayLogDefaults(env: Record<string, string>): {
  defaults: Record<string, string>;
  stream: string | undefined;
} {
  if (!replayLogOn()) return { defaults: { REPLAY_WINDOW_S: '0' }, stream: undefined };
  if (env.REPLAY_STREAM !== undefined || env.REPLAY_WINDOW_S !== undefined) {
    return { defaults: { REPLAY_WINDOW_S: '120' }, stream: undefined };
  }
  // One stream per gateway: each is bound with `#`, so every node of a suite still gets every
  // event, and no node can delete a log another one is still reading.
  const run = process.env[REPLAY_LOG_RUN] ?? String(process.pid);
  const stream = `${runStreamPrefix(run)}${randomBytes(6).toString('hex')}`;
  open.add(stream);
  return { defaults: { REPLAY_WINDOW_S: '120', REPLAY_STREAM: stream }, stream };
}

/** Deletes a stream `replayLogDefaults` handed out (and its epoch stream). */
export async function releaseReplayLog(stream: string | undefined): Promise<void> {
  if (stream === undefined || !open.delete(stream)) return;
  await deleteReplayLog(stream);
}

/** Deletes the streams of gateways a test file left running or never closed. */
export async function releaseOpenReplayLogs(): Promise<void> {
  for (const stream of [...open]) await releaseReplayLog(stream);
}

/** Every stream on the broker whose name starts with `prefix` (epoch streams included). */
export async function streamsStartingWith(prefix: string): Promise<string[]> {
  const { stdout } = await promisify(execFile)('rabbitmqctl', ['-q', 'list_queues', 'name']);
  return stdout
    .split('\n')
    .map((line) => line.trim())
    .filter((name) => name.startsWith(prefix));
}

/**
 * A test whose subject is the per-node queues and their on-demand bindings: with the replay log
 * on, the node binds none (the log holds every key), so the stream project skips it.
 */
export function itWithNodeQueues(
  name: string,
  test: () => Promise<unknown>,
  timeoutMs?: number,
): void {
  (replayLogOn() ? it.skip : it)(name, test, timeoutMs);
}
