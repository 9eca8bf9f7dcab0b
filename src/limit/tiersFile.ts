import { readJsonFile } from '../config/configFiles';
import { parseTiers, type TierParseResult } from './tiers';

/** Reads and validates the tiers file; a missing file or bad JSON is a reason, not a throw. */
export async function readTiersFile(path: string): Promise<TierParseResult> {
  const r = await readJsonFile(path);
  return r.ok ? parseTiers(r.doc) : r;
}
