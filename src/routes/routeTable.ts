import { watchFiles } from '../config/configFiles';
import { audit, type Logger } from '../observability/logger';
import { EMPTY_MATCHER, RouteMatcher } from './matcher';
import { routesToJson, type RoutesParseResult } from './routes';
import { readRoutesFile } from './routesFile';

export interface RouteTableDeps {
  readonly file: string;
  /** The tiers in force, which `tiers` and `limits` must name. */
  readonly tierNames: () => ReadonlySet<string>;
  readonly log: Logger;
  /** Every reload attempt, after it was applied or rejected (metrics, telling workers). */
  readonly onReload?: (ok: boolean, actor: string) => void;
}

/**
 * The routes in force: read from ROUTES_FILE, compiled once per reload, swapped whole so a
 * request sees either the old table or the new one. An invalid file is rejected with its
 * reasons and the old table stays (SPEC §10, "same rules as the tiers").
 */
export class RouteTable {
  private current: RouteMatcher = EMPTY_MATCHER;
  private stopWatching: () => void = () => undefined;

  constructor(private readonly deps: RouteTableDeps) {}

  get matcher(): RouteMatcher {
    return this.current;
  }

  /** The first load: an invalid file is returned for startup to refuse, nothing audited. */
  async load(): Promise<RoutesParseResult> {
    const r = await readRoutesFile(this.deps.file, this.deps.tierNames());
    if (r.ok) this.current = new RouteMatcher(r.routes);
    return r;
  }

  async reload(actor: string): Promise<RoutesParseResult> {
    const r = await readRoutesFile(this.deps.file, this.deps.tierNames());
    if (r.ok) {
      this.current = new RouteMatcher(r.routes);
      audit(this.deps.log, 'routes.reloaded', { routes: r.routes.map((x) => x.name), actor });
    } else {
      audit(this.deps.log, 'routes.rejected', { reasons: r.reasons, actor });
    }
    this.deps.onReload?.(r.ok, actor);
    return r;
  }

  toJson(): Record<string, unknown> {
    return routesToJson(this.current.routes);
  }

  /** Reloads when the file changes (as the tiers file is watched: the directory, debounced). */
  watch(actor: string): void {
    this.stopWatching = watchFiles([this.deps.file], () => { void this.reload(actor); });
  }

  close(): void {
    this.stopWatching();
  }
}
