import { randomBytes } from 'node:crypto';
import { REPLAY_LOG_RUN } from '../support/replay-log-mode';

/** Names this run's streams, so the teardown sweeps them and no other run's. */
export default function globalSetup(): void {
  process.env[REPLAY_LOG_RUN] ??= `${process.pid}-${randomBytes(3).toString('hex')}`;
}
