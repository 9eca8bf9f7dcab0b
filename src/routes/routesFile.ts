import { readFile } from 'node:fs/promises';
import { parseRoutes, type RoutesParseResult } from './routes';

/** Reads and validates the routes file; a missing file or bad JSON is a reason, not a throw. */
export async function readRoutesFile(path: string, tierNames: ReadonlySet<string>): Promise<RoutesParseResult> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    return { ok: false, reasons: [`cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`] };
  }
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    return { ok: false, reasons: [`${path} is not valid JSON: ${(err as Error).message}`] };
  }
  return parseRoutes(doc, tierNames);
}
