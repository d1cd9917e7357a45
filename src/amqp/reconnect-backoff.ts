/**
 * Delays between attempts to reach something that failed: a fast first retry, because most
 * outages seen by a node are a broker restart or a blip that is over before it looks again,
 * then doubling up to a cap so a broker that stays away is not hammered.
 */
export class ReconnectBackoff {
  private attempt = 0;

  constructor(
    readonly firstMs: number,
    readonly capMs: number,
  ) {}

  /** The delay before the next attempt; each call doubles the one after, up to the cap. */
  next(): number {
    const delay = Math.min(this.firstMs * 2 ** this.attempt, this.capMs);
    if (delay < this.capMs) this.attempt++;
    return delay;
  }

  /** An attempt succeeded: the next failure starts again from the first delay. */
  reset(): void {
    this.attempt = 0;
  }
}

/** First retry after the broker connection, a consumer or a channel is lost. */
export const FIRST_RETRY_MS = 100;
