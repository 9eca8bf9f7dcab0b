import type { Registry } from 'prom-client';

/** One exported sample, in the shape prom-client's Registry and AggregatorRegistry read. */
interface Sample {
  readonly value: number;
  readonly labels: Readonly<Record<string, string | number>>;
  readonly metricName: string;
}

/**
 * A label-less Prometheus histogram whose `observe` is a bucket search and three
 * additions. prom-client's own Histogram builds a label object, validates it, hashes it
 * to a string and indexes its buckets by the bound turned into a string on every call:
 * ≈8,000 instructions per observation (callgrind), and the gateway makes three per
 * request. This one registers in a prom-client Registry like any metric (the Registry
 * only calls `get()`), so exposition, worker aggregation and default metrics stay
 * prom-client's, and its output is line for line what prom-client's Histogram prints.
 */
export class BucketHistogram {
  readonly type = 'histogram';
  readonly aggregator = 'sum';
  private readonly bounds: Float64Array;
  private readonly counts: Float64Array;
  private sum = 0;
  private count = 0;

  constructor(readonly name: string, readonly help: string, buckets: readonly number[], registry: Registry) {
    this.bounds = Float64Array.from([...buckets].sort((a, b) => a - b));
    this.counts = new Float64Array(this.bounds.length);
    registry.registerMetric(this as unknown as Parameters<Registry['registerMetric']>[0]);
  }

  observe(value: number): void {
    const bounds = this.bounds;
    for (let i = 0; i < bounds.length; i++) {
      if (value <= bounds[i]) {
        this.counts[i] += 1;
        break;
      }
    }
    this.sum += value;
    this.count += 1;
  }

  /** prom-client's Registry.resetMetrics() calls this on every metric. */
  reset(): void {
    this.counts.fill(0);
    this.sum = 0;
    this.count = 0;
  }

  get(): { name: string; help: string; type: string; aggregator: string; values: Sample[] } {
    const bucket = `${this.name}_bucket`;
    const values: Sample[] = [];
    let cumulative = 0;
    for (let i = 0; i < this.bounds.length; i++) {
      cumulative += this.counts[i];
      values.push({ value: cumulative, labels: { le: this.bounds[i] }, metricName: bucket });
    }
    values.push(
      { value: this.count, labels: { le: '+Inf' }, metricName: bucket },
      { value: this.sum, labels: {}, metricName: `${this.name}_sum` },
      { value: this.count, labels: {}, metricName: `${this.name}_count` },
    );
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values };
  }
}
