/**
 * Positions in the shared replay log, as clients see them: `<epoch>-<offset>`, the offset
 * zero-padded so that positions of one epoch sort as strings in log order. Clients treat them
 * as opaque; only the node reads them back.
 */

/** Digits of a padded offset: RabbitMQ stream offsets are unsigned 64-bit, JS integers 53-bit. */
const OFFSET_DIGITS = 16;
const POSITION = /^([0-9a-z]{8,32})-(\d{16})$/;
/** Longest position string read at all; anything longer is not ours. */
export const MAX_POSITION_LENGTH = 64;

export interface LogPosition {
  readonly epoch: string;
  readonly offset: number;
}

export function formatPosition(epoch: string, offset: number): string {
  return `${epoch}-${String(offset).padStart(OFFSET_DIGITS, '0')}`;
}

/** The position a client presented, or `undefined` when it is no position of any log. */
export function parsePosition(position: string): LogPosition | undefined {
  if (position.length > MAX_POSITION_LENGTH) return undefined;
  const match = POSITION.exec(position);
  if (!match) return undefined;
  const offset = Number(match[2]);
  if (!Number.isSafeInteger(offset)) return undefined;
  return { epoch: match[1], offset };
}
