import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';

/**
 * Identifies this gateway process on the broker. The random suffix keeps two instances on
 * one host (or two test apps in one process) from claiming the same exclusive queues.
 */
export class NodeIdentity {
  readonly id = `${hostname()}-${process.pid}-${randomBytes(3).toString('hex')}`;

  /** Name of the exclusive queue through which this node consumes `exchange`. */
  queueName(exchange: string): string {
    return `blackhole.${this.id}.${exchange}`;
  }
}
