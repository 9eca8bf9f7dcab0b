import { chmodSync, mkdirSync, readlinkSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';

/*
 * A directory laid out as the kubelet mounts a ConfigMap or Secret volume: the files are
 * symlinks through `..data`, itself a symlink to a timestamped directory holding the real
 * files. An update writes a new timestamped directory, renames a new `..data` over the old
 * one (the one atomic step) and removes the old directory, so the files' own paths never
 * change and a watch on a file's inode never fires.
 */

export interface KubeletVolume {
  readonly dir: string;
  /** The path a file of the volume has inside the pod. */
  file(name: string): string;
  /** Publishes new contents the way the kubelet does; names not given keep their contents. */
  update(files: Record<string, string | Buffer>): void;
}

export function kubeletVolume(dir: string, files: Record<string, string | Buffer>, mode = 0o644): KubeletVolume {
  mkdirSync(dir, { recursive: true });
  let version = 0;
  let current: Record<string, string | Buffer> = {};
  const publish = (next: Record<string, string | Buffer>): void => {
    version += 1;
    const data = `..2026_12_06_00_00_00.${String(version).padStart(6, '0')}`;
    mkdirSync(path.join(dir, data));
    for (const [name, content] of Object.entries(next)) {
      writeFileSync(path.join(dir, data, name), content);
      chmodSync(path.join(dir, data, name), mode);
    }
    const previous = version > 1 ? readlinkSync(path.join(dir, '..data')) : null;
    symlinkSync(data, path.join(dir, '..data_tmp'));
    renameSync(path.join(dir, '..data_tmp'), path.join(dir, '..data'));
    if (previous) rmSync(path.join(dir, previous), { recursive: true });
    for (const name of Object.keys(next)) {
      if (!(name in current)) symlinkSync(path.join('..data', name), path.join(dir, name));
    }
    current = next;
  };
  publish(files);
  return {
    dir,
    file: (name) => path.join(dir, name),
    update: (changed) => publish({ ...current, ...changed }),
  };
}
