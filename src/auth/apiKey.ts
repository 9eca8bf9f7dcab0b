import { createHash, randomBytes } from 'node:crypto';

/** SPEC §3 step 3: 8–128 of [A-Za-z0-9_-]. */
export const API_KEY_FORMAT = /^[A-Za-z0-9_-]{8,128}$/;

export type KeyExtraction = { kind: 'missing' } | { kind: 'malformed' } | { kind: 'present'; key: string };

/** Reads the key from the configured header; a repeated header counts as malformed. */
export function extractApiKey(header: string | string[] | undefined): KeyExtraction {
  if (header === undefined || header === '') return { kind: 'missing' };
  if (typeof header !== 'string' || !API_KEY_FORMAT.test(header)) return { kind: 'malformed' };
  return { kind: 'present', key: header };
}

/** Keys are stored and cached only as SHA-256 hex digests. */
export function hashApiKey(key: string): string {
  return createHash('sha256').update(key).digest('hex');
}

/** 35 characters: "tg_" + 32 base64url characters (192 bits of randomness). */
export function generateApiKey(): string {
  return `tg_${randomBytes(24).toString('base64url')}`;
}

/** Record ids sort by creation time: base36 milliseconds, then randomness. */
export function generateKeyId(now: number): string {
  return `k_${now.toString(36).padStart(9, '0')}${randomBytes(5).toString('hex')}`;
}

/**
 * SHA-256 costs more than the rest of the key stage together (≈1.4 µs), so the hashes of
 * keys seen recently are remembered. Bounded: past `max` entries it starts over.
 */
export class KeyHasher {
  private readonly hashes = new Map<string, string>();

  constructor(private readonly max = 100_000) {}

  hash(key: string): string {
    let h = this.hashes.get(key);
    if (h === undefined) {
      h = hashApiKey(key);
      if (this.hashes.size >= this.max) this.hashes.clear();
      this.hashes.set(key, h);
    }
    return h;
  }
}
