import { AggregatorRegistry, Histogram, Registry } from 'prom-client';
import { BucketHistogram } from '../../src/observability/bucketHistogram';

const BUCKETS = [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1];
// Edges, values between buckets, above the last bound, and zero.
const VALUES = [0, 0.00005, 0.00007, 0.0001, 0.0003, 0.001, 0.0049, 0.3, 0.5, 1, 1.5, 42];

function both(values: readonly number[]): { ours: Registry; theirs: Registry } {
  const ours = new Registry();
  const theirs = new Registry();
  const h = new BucketHistogram('t_seconds', 'Some help.', BUCKETS, ours);
  const p = new Histogram({ name: 't_seconds', help: 'Some help.', buckets: BUCKETS, registers: [theirs] });
  for (const v of values) {
    h.observe(v);
    p.observe(v);
  }
  return { ours, theirs };
}

describe('BucketHistogram', () => {
  it('prints exactly what prom-client\'s Histogram prints for the same observations', async () => {
    const { ours, theirs } = both(VALUES);
    const text = await ours.metrics();
    expect(text).toBe(await theirs.metrics());
    expect(text).toContain('t_seconds_bucket{le="0.00005"} 2');
    expect(text).toContain('t_seconds_bucket{le="+Inf"} 12');
    expect(text).toContain('t_seconds_count 12');
  });

  it('prints zero buckets before any observation, like prom-client', async () => {
    const { ours, theirs } = both([]);
    expect(await ours.metrics()).toBe(await theirs.metrics());
  });

  it('aggregates across workers like prom-client (summed buckets, sum and count)', async () => {
    const a = both(VALUES);
    const b = both([0.002, 0.2]);
    const ours = AggregatorRegistry.aggregate([await a.ours.getMetricsAsJSON(), await b.ours.getMetricsAsJSON()]);
    const theirs = AggregatorRegistry.aggregate([await a.theirs.getMetricsAsJSON(), await b.theirs.getMetricsAsJSON()]);
    const text = await ours.metrics();
    expect(text).toBe(await theirs.metrics());
    expect(text).toContain('t_seconds_count 14');
  });

  it('starts again from zero on a registry reset', async () => {
    const { ours } = both(VALUES);
    ours.resetMetrics();
    expect(await ours.metrics()).toContain('t_seconds_count 0');
  });
});
