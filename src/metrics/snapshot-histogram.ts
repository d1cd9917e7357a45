import { Histogram, type Registry } from 'prom-client';
import type { HistogramSnapshot } from '../core/events/latency-histogram';

interface ExportedValue {
  readonly metricName: string;
  readonly labels: Record<string, string | number>;
  readonly value: number;
}

interface ExportedHistogram {
  name: string;
  help: string;
  type: 'histogram';
  aggregator: 'sum';
  values: ExportedValue[];
  collect: () => void;
}

/**
 * A prom-client histogram whose buckets are read at scrape time from a histogram the
 * application keeps itself (`LatencyHistogram`), which takes weighted observations: the event
 * path records one observation for a thousand sessions without a metrics library in the core.
 */
export class SnapshotHistogram extends Histogram<string> {
  constructor(
    private readonly metricName: string,
    private readonly metricHelp: string,
    registry: Registry,
    private readonly source: () => HistogramSnapshot,
  ) {
    super({
      name: metricName,
      help: metricHelp,
      buckets: [...source().bounds],
      registers: [registry],
    });
  }

  /** What the registry prints. */
  getForPromString(): Promise<ExportedHistogram> {
    return Promise.resolve(this.export());
  }

  /**
   * The same for `getMetricsAsJSON`. prom-client's typings declare `type` as a numeric enum
   * while its runtime (and its own histograms) use the string, hence the cast.
   */
  override get(): ReturnType<Histogram<string>['get']> {
    return Promise.resolve(
      this.export() as unknown as Awaited<ReturnType<Histogram<string>['get']>>,
    );
  }

  private export(): ExportedHistogram {
    const { bounds, cumulative, sum, count } = this.source();
    const bucket = `${this.metricName}_bucket`;
    const values: ExportedValue[] = bounds.map((le, index) => ({
      metricName: bucket,
      labels: { le },
      value: cumulative[index],
    }));
    values.push(
      { metricName: bucket, labels: { le: '+Inf' }, value: count },
      { metricName: `${this.metricName}_sum`, labels: {}, value: sum },
      { metricName: `${this.metricName}_count`, labels: {}, value: count },
    );
    return {
      name: this.metricName,
      help: this.metricHelp,
      type: 'histogram',
      aggregator: 'sum',
      values,
      collect: () => undefined,
    };
  }
}
