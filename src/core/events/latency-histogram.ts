/** Upper bounds (seconds) of the delivery latency buckets: Kazoo's timestamps have whole seconds. */
export const DELIVERY_LATENCY_BUCKETS: readonly number[] = [
  0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60,
];

export interface HistogramSnapshot {
  /** Upper bounds, ascending; the implicit last bucket is `+Inf`. */
  readonly bounds: readonly number[];
  /** Cumulative counts per bound, then the total (`+Inf`). */
  readonly cumulative: readonly number[];
  readonly sum: number;
  readonly count: number;
}

/**
 * A fixed-bucket histogram that takes a weight: one event sent to a thousand sessions is one
 * observation of weight 1000, not a thousand calls on the delivery path.
 */
export class LatencyHistogram {
  private readonly counts: number[];
  private sum = 0;

  constructor(readonly bounds: readonly number[] = DELIVERY_LATENCY_BUCKETS) {
    this.counts = new Array<number>(bounds.length + 1).fill(0);
  }

  observe(seconds: number, times = 1): void {
    let index = 0;
    while (index < this.bounds.length && seconds > this.bounds[index]) index++;
    this.counts[index] += times;
    this.sum += seconds * times;
  }

  snapshot(): HistogramSnapshot {
    let running = 0;
    const cumulative = this.counts.map((count) => (running += count));
    return { bounds: this.bounds, cumulative, sum: this.sum, count: running };
  }
}
