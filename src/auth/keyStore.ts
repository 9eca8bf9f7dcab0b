/** What an operator sees of a key: never the key, never its hash. */
export interface KeyRecord {
  readonly id: string;
  readonly tier: string;
  readonly name: string;
  readonly disabled: boolean;
  readonly createdAt: string;
}

/** Stored form: the record plus the SHA-256 of the key. */
export interface StoredKey extends KeyRecord {
  readonly hash: string;
}

export interface KeyPatch {
  readonly tier?: string;
  readonly name?: string;
  readonly disabled?: boolean;
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
  return { id: k.id, tier: k.tier, name: k.name, disabled: k.disabled, createdAt: k.createdAt };
}
