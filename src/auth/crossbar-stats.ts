import { LatencyHistogram } from '../core/events/latency-histogram';

/** Upper bounds (seconds) of the Crossbar request duration buckets. */
export const CROSSBAR_DURATION_BUCKETS: readonly number[] = [
  0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
];

/** How a Crossbar request ended: the answer's status class, or why there was none. */
export type CrossbarOutcome = '2xx' | '3xx' | '4xx' | '5xx' | 'timeout' | 'unreachable';

/** `/token_auth` → `token_auth`, `/accounts/{id}` → `accounts`: never an id. */
const endpointOf = (path: string): string => path.split('/')[1] || 'unknown';

function outcomeOf(answer: number | 'timeout' | 'unreachable'): CrossbarOutcome {
  if (typeof answer !== 'number') return answer;
  if (answer >= 500) return '5xx';
  if (answer >= 400) return '4xx';
  if (answer >= 300) return '3xx';
  return '2xx';
}

/** Crossbar requests this node made, read by `/metrics`; the client only records. */
export class CrossbarStats {
  private readonly requests = new Map<
    string,
    { endpoint: string; outcome: CrossbarOutcome; count: number }
  >();
  readonly duration = new LatencyHistogram(CROSSBAR_DURATION_BUCKETS);

  /** Records a request to `path` that began at `startedMs` (`performance.now()`). */
  record(path: string, answer: number | 'timeout' | 'unreachable', startedMs: number): void {
    const endpoint = endpointOf(path);
    const outcome = outcomeOf(answer);
    const key = `${endpoint} ${outcome}`;
    const entry = this.requests.get(key);
    if (entry) entry.count++;
    else this.requests.set(key, { endpoint, outcome, count: 1 });
    this.duration.observe(Math.max(0, performance.now() - startedMs) / 1000);
  }

  counts(): readonly {
    readonly endpoint: string;
    readonly outcome: CrossbarOutcome;
    readonly count: number;
  }[] {
    return [...this.requests.values()];
  }
}
