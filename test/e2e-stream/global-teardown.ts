import { connect } from 'amqplib';
import { AMQP_URL } from '../support/amqp';
import { REPLAY_LOG_RUN, runStreamPrefix, streamsStartingWith } from '../support/replay-log-mode';

/**
 * Deletes whatever stream of this run is still on the broker: a worker killed mid-file (a
 * timeout, a crash) skips its own clean-up, and streams are durable.
 */
export default async function globalTeardown(): Promise<void> {
  const run = process.env[REPLAY_LOG_RUN];
  if (run === undefined) return;
  const left = await streamsStartingWith(runStreamPrefix(run));
  if (left.length === 0) return;
  const connection = await connect(AMQP_URL);
  try {
    const channel = await connection.createChannel();
    for (const stream of left) await channel.deleteQueue(stream);
  } finally {
    await connection.close();
  }
  console.warn(`deleted ${left.length} replay stream(s) a suite left: ${left.join(', ')}`);
}
