import { copyFileSync, mkdirSync, mkdtempSync, renameSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

/*
 * A directory laid out as Kubernetes mounts a Secret: the files are symlinks through
 * `..data`, itself a symlink to a timestamped directory; an update writes a new directory
 * and renames a new `..data` over the old one, so the files' own paths never change.
 */

export interface SecretDir {
  readonly dir: string;
  readonly certFile: string;
  readonly keyFile: string;
  /** Publishes a new pair the way the kubelet does (one atomic rename). */
  swap(certFrom: string, keyFrom: string): void;
}

export function secretDir(certFrom: string, keyFrom: string): SecretDir {
  const dir = mkdtempSync(path.join(tmpdir(), 'tollgate-secret-'));
  let version = 0;
  const publish = (cert: string, key: string): void => {
    version += 1;
    const data = `..2026_12_06_00_00_${String(version).padStart(2, '0')}`;
    mkdirSync(path.join(dir, data));
    copyFileSync(cert, path.join(dir, data, 'tls.crt'));
    copyFileSync(key, path.join(dir, data, 'tls.key'));
    symlinkSync(data, path.join(dir, '..data_tmp'));
    renameSync(path.join(dir, '..data_tmp'), path.join(dir, '..data'));
  };
  publish(certFrom, keyFrom);
  symlinkSync(path.join('..data', 'tls.crt'), path.join(dir, 'tls.crt'));
  symlinkSync(path.join('..data', 'tls.key'), path.join(dir, 'tls.key'));
  return { dir, certFile: path.join(dir, 'tls.crt'), keyFile: path.join(dir, 'tls.key'), swap: publish };
}
