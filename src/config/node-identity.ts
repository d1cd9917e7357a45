import { createHash, randomBytes } from 'node:crypto';
import { hostname } from 'node:os';

/**
 * Identifies this gateway process on the broker. The random suffix keeps two instances on
 * one host (or two test apps in one process) from claiming the same exclusive queues.
 */
export class NodeIdentity {
  readonly id = `${hostname()}-${process.pid}-${randomBytes(3).toString('hex')}`;

  /**
   * What the node is called in public answers (`/v2/websockets`): stable for the process, but
   * says nothing of the host or the pid in `id`. Salted, because the host name, a pid and 24
   * random bits are few enough to try them all against a plain hash.
   */
  readonly publicId = createHash('sha256')
    .update(randomBytes(16))
    .update(this.id)
    .digest('hex')
    .slice(0, 16);

  /** Name of the exclusive queue through which this node consumes `exchange`. */
  queueName(exchange: string): string {
    return `blackhole.${this.id}.${exchange}`;
  }
}
