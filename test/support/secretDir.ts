import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { kubeletVolume } from './kubeletVolume';

/* A TLS pair in a directory laid out as Kubernetes mounts a Secret (see kubeletVolume.ts). */

export interface SecretDir {
  readonly dir: string;
  readonly certFile: string;
  readonly keyFile: string;
  /** Publishes a new pair the way the kubelet does (one atomic rename). */
  swap(certFrom: string, keyFrom: string): void;
}

export function secretDir(certFrom: string, keyFrom: string): SecretDir {
  const pair = (cert: string, key: string) => ({ 'tls.crt': readFileSync(cert), 'tls.key': readFileSync(key) });
  const volume = kubeletVolume(mkdtempSync(path.join(tmpdir(), 'tollgate-secret-')), pair(certFrom, keyFrom));
  return {
    dir: volume.dir,
    certFile: volume.file('tls.crt'),
    keyFile: volume.file('tls.key'),
    swap: (cert, key) => volume.update(pair(cert, key)),
  };
}
