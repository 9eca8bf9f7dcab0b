import { publicRecord, type KeyPage, type KeyStore, type StoredKey } from './keyStore';

export class MemoryKeyStore implements KeyStore {
  private readonly byId = new Map<string, StoredKey>();
  private readonly idByHash = new Map<string, string>();

  findByHash(hash: string): Promise<StoredKey | null> {
    const id = this.idByHash.get(hash);
    return Promise.resolve(id === undefined ? null : this.byId.get(id) ?? null);
  }

  get(id: string): Promise<StoredKey | null> {
    return Promise.resolve(this.byId.get(id) ?? null);
  }

  create(key: StoredKey): Promise<{ created: boolean; key: StoredKey }> {
    const existing = this.idByHash.get(key.hash);
    if (existing !== undefined) return Promise.resolve({ created: false, key: this.byId.get(existing) as StoredKey });
    this.byId.set(key.id, key);
    this.idByHash.set(key.hash, key.id);
    return Promise.resolve({ created: true, key });
  }

  list(limit: number, cursor: string | null): Promise<KeyPage> {
    const ids = [...this.byId.keys()].sort().filter((id) => cursor === null || id > cursor);
    const page = ids.slice(0, limit);
    const next = ids.length > limit ? page[page.length - 1] : null;
    return Promise.resolve({ keys: page.map((id) => publicRecord(this.byId.get(id) as StoredKey)), next });
  }

  replace(id: string, next: StoredKey): Promise<StoredKey | null> {
    const prev = this.byId.get(id);
    if (prev === undefined) return Promise.resolve(null);
    // Keep the new record's key (and a rotation's previous key); drop the old record's others.
    for (const h of [prev.hash, prev.previousHash]) if (h !== undefined && h !== next.hash && h !== next.previousHash) this.idByHash.delete(h);
    this.idByHash.set(next.hash, id);
    if (next.previousHash !== undefined) this.idByHash.set(next.previousHash, id);
    this.byId.set(id, next);
    return Promise.resolve(next);
  }

  delete(id: string): Promise<StoredKey | null> {
    const prev = this.byId.get(id);
    if (prev === undefined) return Promise.resolve(null);
    this.byId.delete(id);
    this.idByHash.delete(prev.hash);
    if (prev.previousHash !== undefined) this.idByHash.delete(prev.previousHash);
    return Promise.resolve(prev);
  }
}
