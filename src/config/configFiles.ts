import { watch, type FSWatcher } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { basename, dirname } from 'node:path';

/*
 * What the hot-reloaded files (tiers, routes, the TLS pair) share: reading a JSON document
 * with every failure as a reason, and watching for changes.
 */

/** A JSON file's document, or why it could not be read: a missing file or bad JSON is a reason, not a throw. */
export async function readJsonFile(path: string): Promise<{ ok: true; doc: unknown } | { ok: false; reasons: string[] }> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    return { ok: false, reasons: [`cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`] };
  }
  try {
    return { ok: true, doc: JSON.parse(text) };
  } catch (err) {
    return { ok: false, reasons: [`${path} is not valid JSON: ${(err as Error).message}`] };
  }
}

/**
 * Calls `onChange` (debounced) when any of `files` may have changed. Watches the
 * directories, not the files: editors and cert-manager replace a file by rename (a new
 * inode), and Kubernetes swaps a ConfigMap's or Secret's `..data` symlink (the files' own
 * inodes never change); a watch on the old file sees neither. The debounce lets the writes
 * of a pair (a certificate and its key) both land before they are read. Without watch
 * support (some network filesystems) SIGHUP and the admin routes still reload.
 */
export function watchFiles(files: readonly string[], onChange: () => void, debounceMs = 200): () => void {
  const byDir = new Map<string, Set<string>>();
  for (const f of files) {
    const names = byDir.get(dirname(f)) ?? new Set<string>();
    names.add(basename(f));
    byDir.set(dirname(f), names);
  }
  let timer: NodeJS.Timeout | null = null;
  const watchers: FSWatcher[] = [];
  const fire = () => {
    if (timer) clearTimeout(timer);
    timer = setTimeout(() => {
      timer = null;
      onChange();
    }, debounceMs);
    timer.unref();
  };
  for (const [dir, names] of byDir) {
    try {
      const w = watch(dir, { persistent: false }, (_event, file) => {
        if (file === null || names.has(file) || file.startsWith('..')) fire();
      });
      w.on('error', () => undefined);
      watchers.push(w);
    } catch {
      // No watch support: reloads come from SIGHUP and the admin routes only.
    }
  }
  return () => {
    if (timer) clearTimeout(timer);
    for (const w of watchers) w.close();
  };
}
