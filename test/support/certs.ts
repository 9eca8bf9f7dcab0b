import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { runToExit } from './processes';

/* Certificates for TLS tests (Redis over TLS, an https upstream), made with openssl. */

export interface Certs {
  ca: string;
  cert: string;
  key: string;
}

const OPENSSL_TIMEOUT_MS = 5000;

async function openssl(name: string, args: string[]): Promise<string> {
  const result = await runToExit(name, 'openssl', args, { timeoutMs: OPENSSL_TIMEOUT_MS });
  if (result.code !== 0) throw new Error(`${name} exited with code ${String(result.code)}:\n${result.stdout}${result.stderr}`);
  return result.stdout;
}

/** A CA, and a server certificate it signed for IP:127.0.0.1 and DNS:localhost (also usable as a client certificate between cluster nodes). */
export async function makeCerts(into: string): Promise<Certs> {
  const file = (name: string) => path.join(into, name);
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  await openssl('openssl CA', ['req', '-x509', '-new', ...ec, '-keyout', file('ca.key'), '-out', file('ca.pem'), '-days', '2', '-subj', '/CN=tollgate test CA']);
  await openssl('openssl CSR', ['req', '-new', ...ec, '-keyout', file('server.key'), '-out', file('server.csr'), '-subj', '/CN=127.0.0.1']);
  writeFileSync(file('server.ext'), [
    'subjectAltName=IP:127.0.0.1,DNS:localhost',
    'basicConstraints=CA:FALSE',
    'keyUsage=digitalSignature,keyEncipherment',
    'extendedKeyUsage=serverAuth,clientAuth',
    '',
  ].join('\n'));
  await openssl('openssl sign', ['x509', '-req', '-in', file('server.csr'), '-CA', file('ca.pem'), '-CAkey', file('ca.key'), '-CAcreateserial', '-out', file('server.pem'), '-days', '2', '-extfile', file('server.ext')]);
  const verified = await openssl('openssl verify', ['verify', '-CAfile', file('ca.pem'), file('server.pem')]);
  if (!verified.includes('OK')) throw new Error(`server certificate does not verify against the CA: ${verified}`);
  return { ca: file('ca.pem'), cert: file('server.pem'), key: file('server.key') };
}

