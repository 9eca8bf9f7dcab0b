import { keyLimitsJson, type KeyLimits } from '../limit/planLimits';

/** What an operator sees of a key: never the key, never its hash. */
export interface KeyRecord {
  readonly id: string;
  readonly tier: string;
  readonly name: string;
  readonly disabled: boolean;
  readonly createdAt: string;
  /** SPEC §9: keys with one identity share one set of counters. */
  readonly identity?: string;
  /** ISO-8601; after it the key gets 401 key_expired. */
  readonly expiresAt?: string;
  /** Replaces the tier's values for this key only. */
  readonly limits?: KeyLimits;
  /** After a rotation with grace: when the previous key stops working (ISO-8601). */
  readonly previousKeyUntil?: string;
}

/** Stored form: the record plus the SHA-256 of the key (and of the previous key during a rotation's grace). */
export interface StoredKey extends KeyRecord {
  readonly hash: string;
  readonly previousHash?: string;
}

/** `null` removes the field. */
export interface KeyPatch {
  readonly tier?: string;
  readonly name?: string;
  readonly disabled?: boolean;
  readonly identity?: string | null;
  readonly expiresAt?: string | null;
  readonly limits?: KeyLimits | null;
}

export interface KeyPage {
  readonly keys: KeyRecord[];
  readonly next: string | null;
}

/** One interface, a memory and a Redis implementation, one contract suite for both. */
export interface KeyStore {
  findByHash(hash: string): Promise<StoredKey | null>;
  get(id: string): Promise<StoredKey | null>;
  /** Creates unless a key with this hash exists; returns the existing one then, with `created: false`. */
  create(key: StoredKey): Promise<{ created: boolean; key: StoredKey }>;
  list(limit: number, cursor: string | null): Promise<KeyPage>;
  /** Replaces the stored record (same id); `hash` may change (rotate). Null when the id is unknown. */
  replace(id: string, next: StoredKey): Promise<StoredKey | null>;
  delete(id: string): Promise<StoredKey | null>;
}

export function publicRecord(k: StoredKey): KeyRecord {
  return {
    id: k.id, tier: k.tier, name: k.name, disabled: k.disabled, createdAt: k.createdAt,
    ...(k.identity !== undefined ? { identity: k.identity } : {}),
    ...(k.expiresAt !== undefined ? { expiresAt: k.expiresAt } : {}),
    ...(k.limits !== undefined ? { limits: keyLimitsJson(k.limits) as KeyLimits } : {}),
    ...(k.previousKeyUntil !== undefined ? { previousKeyUntil: k.previousKeyUntil } : {}),
  };
}
