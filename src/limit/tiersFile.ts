import { watch, type FSWatcher } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { basename, dirname } from 'node:path';
import { parseTiers, type TierParseResult } from './tiers';

/** Reads and validates the tiers file; a missing file or bad JSON is a reason, not a throw. */
export async function readTiersFile(path: string): Promise<TierParseResult> {
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
  return parseTiers(doc);
}

/**
 * Calls `onChange` (debounced) when the tiers file may have changed. Watches the
 * directory, not the file: editors replace the file (a new inode) and Kubernetes swaps
 * a ConfigMap's `..data` symlink, and a watch on the old file sees neither.
 */
export function watchTiersFile(path: string, onChange: () => void, debounceMs = 200): () => void {
  const dir = dirname(path);
  const name = basename(path);
  let timer: NodeJS.Timeout | null = null;
  let watcher: FSWatcher | null = null;
  const fire = () => {
    if (timer) clearTimeout(timer);
    timer = setTimeout(() => {
      timer = null;
      onChange();
    }, debounceMs);
    timer.unref();
  };
  try {
    watcher = watch(dir, { persistent: false }, (_event, file) => {
      if (file === null || file === name || file.startsWith('..')) fire();
    });
    watcher.on('error', () => undefined);
  } catch {
    // No watch support (some network filesystems): SIGHUP and the admin route still work.
  }
  return () => {
    if (timer) clearTimeout(timer);
    watcher?.close();
  };
}
