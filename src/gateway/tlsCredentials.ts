import { X509Certificate, createPrivateKey } from 'node:crypto';
import { watch, type FSWatcher } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { basename, dirname } from 'node:path';

/*
 * The proxy port's certificate and key (SPEC §11): read, checked to belong together, and
 * watched for changes. Nothing here touches a server; the listener applies a pair that
 * passed these checks (proxyServer.ts).
 */

/** A certificate (chain) and its private key, PEM, checked to match. */
export interface TlsPair {
  readonly cert: Buffer;
  readonly key: Buffer;
  /** SHA-256 fingerprint of the leaf certificate, for logs and audit lines. */
  readonly fingerprint: string;
  /** The leaf's notAfter, as the certificate says it. */
  readonly validTo: string;
}

export type TlsPairResult = { readonly ok: true; readonly pair: TlsPair } | { readonly ok: false; readonly setting: 'TLS_CERT_FILE' | 'TLS_KEY_FILE'; readonly reason: string };

async function readPem(path: string): Promise<Buffer | string> {
  try {
    return await readFile(path);
  } catch (err) {
    return `cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`;
  }
}

/**
 * Reads both files and checks that the key is the certificate's: a missing or unreadable
 * file, a file that is not PEM, or a key of another certificate is a reason, never a throw.
 * (A bad pair given to the server itself would fail only at the next handshake.)
 */
export async function readTlsPair(certFile: string, keyFile: string): Promise<TlsPairResult> {
  const [cert, key] = await Promise.all([readPem(certFile), readPem(keyFile)]);
  if (typeof cert === 'string') return { ok: false, setting: 'TLS_CERT_FILE', reason: cert };
  if (typeof key === 'string') return { ok: false, setting: 'TLS_KEY_FILE', reason: key };
  let x509: X509Certificate;
  try {
    x509 = new X509Certificate(cert);
  } catch (err) {
    return { ok: false, setting: 'TLS_CERT_FILE', reason: `${certFile} holds no PEM certificate (${(err as Error).message})` };
  }
  let privateKey: ReturnType<typeof createPrivateKey>;
  try {
    privateKey = createPrivateKey(key);
  } catch (err) {
    return { ok: false, setting: 'TLS_KEY_FILE', reason: `${keyFile} holds no PEM private key (${(err as Error).message})` };
  }
  if (!x509.checkPrivateKey(privateKey)) {
    return { ok: false, setting: 'TLS_KEY_FILE', reason: `the key in ${keyFile} does not belong to the certificate in ${certFile}` };
  }
  return { ok: true, pair: { cert, key, fingerprint: x509.fingerprint256, validTo: x509.validTo } };
}

/**
 * Calls `onChange` (debounced) when either file may have changed. Watches the directories,
 * not the files: a Kubernetes Secret volume swaps its `..data` symlink (the files' own
 * inodes never change), and cert-manager or an editor replaces a file by rename; a watch on
 * the old file sees neither. A write of the pair is two writes: the debounce lets both land
 * before they are read (a half-written pair is rejected and the next event retries).
 */
export function watchTlsFiles(files: readonly string[], onChange: () => void, debounceMs = 200): () => void {
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
      // No watch support (some network filesystems): SIGHUP still reloads.
    }
  }
  return () => {
    if (timer) clearTimeout(timer);
    for (const w of watchers) w.close();
  };
}
