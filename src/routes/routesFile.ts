import { readJsonFile } from '../config/configFiles';
import { parseRoutes, type RoutesParseResult } from './routes';

/** Reads and validates the routes file; a missing file or bad JSON is a reason, not a throw. */
export async function readRoutesFile(path: string, tierNames: ReadonlySet<string>): Promise<RoutesParseResult> {
  const r = await readJsonFile(path);
  return r.ok ? parseRoutes(r.doc, tierNames) : r;
}
