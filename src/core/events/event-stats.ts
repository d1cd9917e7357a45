/** Counters of the event path, exposed on `/health` for operators. */
export class EventStats {
  /** Messages handed to the core by the broker consumers. */
  received = 0;
  /** Events sent to sessions (one per session and event). */
  delivered = 0;
  /** Events dropped because their account could not be determined (never broadcast). */
  droppedWithoutAccount = 0;
  /** Messages that were not a JSON object or that a family could not read. */
  malformed = 0;
  /** Messages over `AMQP_MAX_MESSAGE_BYTES`, raw or inflated: dropped unparsed. */
  oversize = 0;
  /** Connections dropped because they left more than `MAX_OUTBOUND_BYTES` unsent. */
  slowConsumerDisconnects = 0;
  /** Connections closed because a frame handler failed in a way nobody foresaw (a bug). */
  internalErrorDisconnects = 0;

  snapshot(): Record<string, number> {
    return {
      received: this.received,
      delivered: this.delivered,
      dropped_without_account: this.droppedWithoutAccount,
      malformed: this.malformed,
      oversize: this.oversize,
      slow_consumer_disconnects: this.slowConsumerDisconnects,
      internal_error_disconnects: this.internalErrorDisconnects,
    };
  }
}
