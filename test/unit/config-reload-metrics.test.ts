import { AggregatorRegistry } from 'prom-client';
import { Metrics } from '../../src/observability/metrics';

/* tollgate_config_reloads_total / tollgate_config_last_reload_ok (SPEC §12). */

function line(text: string, series: string): string | undefined {
  return text.split('\n').find((l) => l.startsWith(`${series} `));
}

describe('config reload metrics', () => {
  it('exist for tiers, routes and tls before any reload, last_reload_ok = 1 and no reloads counted', async () => {
    const text = await new Metrics({ defaultMetrics: false }).text();
    for (const file of ['tiers', 'routes', 'tls']) {
      expect(line(text, `tollgate_config_last_reload_ok{file="${file}"}`)).toBe(`tollgate_config_last_reload_ok{file="${file}"} 1`);
      expect(line(text, `tollgate_config_reloads_total{file="${file}",result="ok"}`)).toMatch(/ 0$/);
      expect(line(text, `tollgate_config_reloads_total{file="${file}",result="rejected"}`)).toMatch(/ 0$/);
    }
  });

  it('a rejected reload counts rejected and sets last_reload_ok 0 for that file only; a good one sets it back', async () => {
    const m = new Metrics({ defaultMetrics: false });
    m.configReload('tiers', false);
    let text = await m.text();
    expect(line(text, 'tollgate_config_last_reload_ok{file="tiers"}')).toMatch(/ 0$/);
    expect(line(text, 'tollgate_config_last_reload_ok{file="routes"}')).toMatch(/ 1$/);
    expect(line(text, 'tollgate_config_reloads_total{file="tiers",result="rejected"}')).toMatch(/ 1$/);
    m.configReload('tiers', true);
    m.configReload('tiers', true);
    text = await m.text();
    expect(line(text, 'tollgate_config_last_reload_ok{file="tiers"}')).toMatch(/ 1$/);
    expect(line(text, 'tollgate_config_reloads_total{file="tiers",result="ok"}')).toMatch(/ 2$/);
    expect(line(text, 'tollgate_config_reloads_total{file="tiers",result="rejected"}')).toMatch(/ 1$/);
  });

  it('across workers (the primary\'s AggregatorRegistry): one worker that rejected makes the fleet 0; reload counts add up', async () => {
    const a = new Metrics({ defaultMetrics: false });
    const b = new Metrics({ defaultMetrics: false });
    a.configReload('tiers', true);
    b.configReload('tiers', false);
    const merged = await AggregatorRegistry.aggregate([
      await a.registry.getMetricsAsJSON(),
      await b.registry.getMetricsAsJSON(),
    ]).metrics();
    expect(line(merged, 'tollgate_config_last_reload_ok{file="tiers"}')).toMatch(/ 0$/);
    expect(line(merged, 'tollgate_config_last_reload_ok{file="tls"}')).toMatch(/ 1$/);
    expect(line(merged, 'tollgate_config_reloads_total{file="tiers",result="ok"}')).toMatch(/ 1$/);
    expect(line(merged, 'tollgate_config_reloads_total{file="tiers",result="rejected"}')).toMatch(/ 1$/);
  });
});
