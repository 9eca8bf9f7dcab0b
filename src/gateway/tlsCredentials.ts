import { X509Certificate, createPrivateKey } from 'node:crypto';
import { readFile } from 'node:fs/promises';

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

