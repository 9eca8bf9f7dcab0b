import type { Clock } from '../clock';
import { GatewayError } from '../errors';
import type { Control } from '../sync/control';
import { API_KEY_FORMAT, generateApiKey, generateKeyId, hashApiKey } from './apiKey';
import type { KeyLimits } from '../limit/planLimits';
import { publicRecord, type KeyPage, type KeyPatch, type KeyRecord, type KeyStore, type StoredKey } from './keyStore';

export interface NewKey {
  readonly tier: string;
  readonly name: string;
  /** Import this key instead of generating one. */
  readonly key?: string;
  readonly identity?: string;
  readonly expiresAt?: string;
  readonly limits?: KeyLimits;
}

/** The record after a patch: a `null` field is removed. */
function patched(prev: StoredKey, patch: KeyPatch): StoredKey {
  const next: Record<string, unknown> = { ...prev };
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete next[k];
    else if (v !== undefined) next[k] = v;
  }
  return next as unknown as StoredKey;
}

export type AuditFn = (event: string, fields: Record<string, unknown>) => void;

/**
 * Key management: validates against the tiers in force, writes the store, and tells
 * every instance (through Control) which cached hashes to drop.
 */
export class KeyService {
  constructor(
    private readonly store: KeyStore,
    private readonly control: Control,
    private readonly tierExists: (tier: string) => boolean,
    private readonly clock: Clock,
    private readonly audit: AuditFn,
  ) {}

  async create(input: NewKey, actor: string): Promise<KeyRecord & { key: string }> {
    this.checkTier(input.tier);
    if (input.key !== undefined && !API_KEY_FORMAT.test(input.key)) {
      throw new GatewayError('invalid_request', 'key must be 8-128 of [A-Za-z0-9_-]');
    }
    const key = input.key ?? generateApiKey();
    const stored = this.newRecord(input, key);
    const result = await this.store.create(stored);
    if (!result.created) throw new GatewayError('invalid_request', 'that key already exists');
    await this.control.keysChanged([stored.hash]);
    this.audit('key.created', { keyId: stored.id, tier: stored.tier, actor });
    return { ...publicRecord(stored), key };
  }

  /** Startup import from KEYS_FILE: idempotent, so every instance may run it. */
  async importKey(input: NewKey): Promise<boolean> {
    this.checkTier(input.tier);
    const stored = this.newRecord(input, input.key as string);
    const result = await this.store.create(stored);
    if (result.created) await this.control.keysChanged([stored.hash]);
    return result.created;
  }

  async get(id: string): Promise<KeyRecord> {
    return publicRecord(await this.mustGet(id));
  }

  /** The stored record (with its hash), for the limiter's usage and quota views; never shown. */
  stored(id: string): Promise<StoredKey> {
    return this.mustGet(id);
  }

  list(limit: number, cursor: string | null): Promise<KeyPage> {
    return this.store.list(limit, cursor);
  }

  async update(id: string, patch: KeyPatch, actor: string): Promise<KeyRecord> {
    if (patch.tier !== undefined) this.checkTier(patch.tier);
    const prev = await this.mustGet(id);
    const next = patched(prev, patch);
    const saved = await this.store.replace(id, next);
    if (saved === null) throw new GatewayError('not_found');
    await this.control.keysChanged([prev.hash]);
    this.audit('key.updated', { keyId: id, changes: Object.keys(patch), actor });
    return publicRecord(saved);
  }

  async revoke(id: string, actor: string): Promise<void> {
    const prev = await this.store.delete(id);
    if (prev === null) throw new GatewayError('not_found');
    await this.control.keysChanged([prev.hash]);
    this.audit('key.revoked', { keyId: id, actor });
  }

  /** A new key; with `graceSeconds` > 0 the old one keeps working that long (SPEC §9). */
  async rotate(id: string, actor: string, graceSeconds = 0): Promise<KeyRecord & { key: string }> {
    const prev = await this.mustGet(id);
    const key = generateApiKey();
    const rest = patched(prev, { previousHash: null, previousKeyUntil: null } as unknown as KeyPatch);
    const next: StoredKey = graceSeconds > 0
      ? { ...rest, hash: hashApiKey(key), previousHash: prev.hash, previousKeyUntil: new Date(this.clock() + graceSeconds * 1000).toISOString() }
      : { ...rest, hash: hashApiKey(key) };
    const saved = await this.store.replace(id, next);
    if (saved === null) throw new GatewayError('not_found');
    await this.control.keysChanged([prev.hash, saved.hash, ...(prev.previousHash === undefined ? [] : [prev.previousHash])]);
    this.audit('key.rotated', { keyId: id, actor, ...(graceSeconds > 0 ? { graceSeconds } : {}) });
    return { ...publicRecord(saved), key };
  }

  private newRecord(input: NewKey, key: string): StoredKey {
    const now = this.clock();
    return {
      id: generateKeyId(now), tier: input.tier, name: input.name, disabled: false, createdAt: new Date(now).toISOString(),
      ...(input.identity !== undefined ? { identity: input.identity } : {}),
      ...(input.expiresAt !== undefined ? { expiresAt: input.expiresAt } : {}),
      ...(input.limits !== undefined ? { limits: input.limits } : {}),
      hash: hashApiKey(key),
    };
  }

  private async mustGet(id: string): Promise<StoredKey> {
    const k = await this.store.get(id);
    if (k === null) throw new GatewayError('not_found');
    return k;
  }

  private checkTier(tier: string): void {
    if (!this.tierExists(tier)) throw new GatewayError('invalid_request', `unknown tier ${JSON.stringify(tier)}`);
  }
}
