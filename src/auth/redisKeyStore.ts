import type { Cluster, Redis } from 'ioredis';
import { publicRecord, type KeyPage, type KeyStore, type StoredKey } from './keyStore';

/*
 * Layout, all under one hash tag so multi-key scripts work on Redis Cluster:
 *   <prefix>{keys}:h:<sha256>  → id
 *   <prefix>{keys}:r:<id>      → JSON StoredKey
 *   <prefix>{keys}:ids         → sorted set of ids (score 0, ordered by id for paging)
 */

/** KEYS[1] h:<hash>; ARGV[1] record key prefix. Returns the JSON record or nil — one round trip. */
const LOOKUP_LUA = `
local id = redis.call('GET', KEYS[1])
if not id then return nil end
return redis.call('GET', ARGV[1] .. id)
`;

/** KEYS[1] h:<hash>, KEYS[2] r:<id>, KEYS[3] ids; ARGV[1] id, ARGV[2] JSON, ARGV[3] record prefix. Returns {1, json} or {0, existing json}. */
const CREATE_LUA = `
local existing = redis.call('GET', KEYS[1])
if existing then return {0, redis.call('GET', ARGV[3] .. existing)} end
redis.call('SET', KEYS[1], ARGV[1])
redis.call('SET', KEYS[2], ARGV[2])
redis.call('ZADD', KEYS[3], 0, ARGV[1])
return {1, ARGV[2]}
`;

/**
 * KEYS[1] r:<id>; ARGV[1] new JSON, ARGV[2] hash-key prefix, ARGV[3] ms the previous key's
 * mapping is kept (a rotation's grace, plus a margin: the record's previousKeyUntil decides).
 * Keeps h:<hash> (and h:<previousHash>) of the new record, drops the old record's others.
 * Returns new JSON or nil.
 */
const REPLACE_LUA = `
local prev = redis.call('GET', KEYS[1])
if not prev then return nil end
local p = cjson.decode(prev)
local nx = cjson.decode(ARGV[1])
local keep = {}
keep[nx.hash] = true
if type(nx.previousHash) == 'string' then keep[nx.previousHash] = true end
if not keep[p.hash] then redis.call('DEL', ARGV[2] .. p.hash) end
if type(p.previousHash) == 'string' and not keep[p.previousHash] then redis.call('DEL', ARGV[2] .. p.previousHash) end
redis.call('SET', ARGV[2] .. nx.hash, nx.id)
if type(nx.previousHash) == 'string' then
  redis.call('SET', ARGV[2] .. nx.previousHash, nx.id, 'PX', tonumber(ARGV[3]))
end
redis.call('SET', KEYS[1], ARGV[1])
return ARGV[1]
`;

/** KEYS[1] r:<id>, KEYS[2] ids; ARGV[1] id, ARGV[2] hash-key prefix. Returns the deleted JSON or nil. */
const DELETE_LUA = `
local prev = redis.call('GET', KEYS[1])
if not prev then return nil end
local p = cjson.decode(prev)
redis.call('DEL', ARGV[2] .. p.hash)
if type(p.previousHash) == 'string' then redis.call('DEL', ARGV[2] .. p.previousHash) end
redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], ARGV[1])
return prev
`;

interface KeyScripts {
  tollgateKeyLookup(hashKey: string, recordPrefix: string): Promise<string | null>;
  tollgateKeyCreate(hashKey: string, recordKey: string, idsKey: string, id: string, json: string, recordPrefix: string): Promise<[number, string]>;
  tollgateKeyReplace(recordKey: string, json: string, hashPrefix: string, previousKeepMs: number): Promise<string | null>;
  tollgateKeyDelete(recordKey: string, idsKey: string, id: string, hashPrefix: string): Promise<string | null>;
}

function withScripts(client: Redis | Cluster): KeyScripts {
  const c = client as (Redis | Cluster) & Partial<KeyScripts>;
  if (!c.tollgateKeyLookup) {
    c.defineCommand('tollgateKeyLookup', { numberOfKeys: 1, lua: LOOKUP_LUA });
    c.defineCommand('tollgateKeyCreate', { numberOfKeys: 3, lua: CREATE_LUA });
    c.defineCommand('tollgateKeyReplace', { numberOfKeys: 1, lua: REPLACE_LUA });
    c.defineCommand('tollgateKeyDelete', { numberOfKeys: 2, lua: DELETE_LUA });
  }
  return c as unknown as KeyScripts;
}

function parse(json: string | null): StoredKey | null {
  return json === null ? null : (JSON.parse(json) as StoredKey);
}

export class RedisKeyStore implements KeyStore {
  private readonly scripts: KeyScripts;
  private readonly hashPrefix: string;
  private readonly recordPrefix: string;
  private readonly idsKey: string;

  constructor(private readonly client: Redis | Cluster, prefix: string) {
    this.scripts = withScripts(client);
    this.hashPrefix = `${prefix}{keys}:h:`;
    this.recordPrefix = `${prefix}{keys}:r:`;
    this.idsKey = `${prefix}{keys}:ids`;
  }

  async findByHash(hash: string): Promise<StoredKey | null> {
    return parse(await this.scripts.tollgateKeyLookup(this.hashPrefix + hash, this.recordPrefix));
  }

  async get(id: string): Promise<StoredKey | null> {
    return parse(await this.client.get(this.recordPrefix + id));
  }

  async create(key: StoredKey): Promise<{ created: boolean; key: StoredKey }> {
    const [created, json] = await this.scripts.tollgateKeyCreate(
      this.hashPrefix + key.hash, this.recordPrefix + key.id, this.idsKey, key.id, JSON.stringify(key), this.recordPrefix);
    return { created: created === 1, key: parse(json) as StoredKey };
  }

  async list(limit: number, cursor: string | null): Promise<KeyPage> {
    const ids = await this.client.zrangebylex(this.idsKey, cursor === null ? '-' : `(${cursor}`, '+', 'LIMIT', 0, limit + 1);
    const page = ids.slice(0, limit);
    const records = page.length === 0 ? [] : await this.client.mget(...page.map((id) => this.recordPrefix + id));
    const keys = records.filter((r): r is string => r !== null).map((r) => publicRecord(JSON.parse(r) as StoredKey));
    return { keys, next: ids.length > limit ? page[page.length - 1] : null };
  }

  async replace(id: string, next: StoredKey): Promise<StoredKey | null> {
    // The previous key's mapping outlives its grace by a minute; the record's previousKeyUntil decides.
    const until = next.previousKeyUntil === undefined ? 0 : Date.parse(next.previousKeyUntil);
    const keepMs = Math.max(1000, until - Date.now() + 60_000);
    return parse(await this.scripts.tollgateKeyReplace(this.recordPrefix + id, JSON.stringify(next), this.hashPrefix, keepMs));
  }

  async delete(id: string): Promise<StoredKey | null> {
    return parse(await this.scripts.tollgateKeyDelete(this.recordPrefix + id, this.idsKey, id, this.hashPrefix));
  }
}
