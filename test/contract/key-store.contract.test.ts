import { randomUUID } from 'node:crypto';
import { Cluster, Redis } from 'ioredis';
import { generateKeyId, hashApiKey } from '../../src/auth/apiKey';
import type { KeyRecord, KeyStore, StoredKey } from '../../src/auth/keyStore';
import { MemoryKeyStore } from '../../src/auth/memoryKeyStore';
import { RedisKeyStore } from '../../src/auth/redisKeyStore';
import { startRedis } from '../support/redis';
import { startRedisCluster } from '../support/redisCluster';

/*
 * One behaviour suite for every KeyStore backend (STYLE habit 4): MemoryKeyStore,
 * RedisKeyStore on a real redis-server and on a three-master Redis Cluster.
 * SPEC §4: keys are stored hashed, records never show the key or its hash.
 */

interface KeyStoreFixture {
  /** A new, empty store (its own key prefix on Redis). */
  makeStore(): KeyStore;
  close(): Promise<void>;
}

const T0 = 1_700_000_000_000;
const RECORD_FIELDS = ['createdAt', 'disabled', 'id', 'name', 'tier'];

let counter = 0;
function newKey(overrides: Partial<StoredKey> = {}): StoredKey {
  counter += 1;
  const now = T0 + counter;
  return {
    id: generateKeyId(now),
    tier: 'free',
    name: `key ${counter}`,
    disabled: false,
    createdAt: new Date(now).toISOString(),
    hash: hashApiKey(`contract_key_${counter}_${randomUUID()}`),
    ...overrides,
  };
}

function publicOf(k: StoredKey): KeyRecord {
  return { id: k.id, tier: k.tier, name: k.name, disabled: k.disabled, createdAt: k.createdAt };
}

function describeKeyStoreContract(name: string, makeFixture: () => Promise<KeyStoreFixture>): void {
  describe(`KeyStore contract: ${name}`, () => {
    let fixture: KeyStoreFixture | undefined;
    beforeAll(async () => {
      fixture = await makeFixture();
    });
    afterAll(async () => {
      await fixture?.close();
    });
    function store(): KeyStore {
      if (fixture === undefined) throw new Error(`${name} fixture did not start`);
      return fixture.makeStore();
    }

    test('create, then findByHash and get return the stored key', async () => {
      const s = store();
      const key = newKey({ tier: 'pro', name: 'acme' });
      expect(await s.create(key)).toEqual({ created: true, key });
      expect(await s.findByHash(key.hash)).toEqual(key);
      expect(await s.get(key.id)).toEqual(key);
    });

    test('unknown hash or id: null', async () => {
      const s = store();
      await s.create(newKey());
      expect(await s.findByHash(hashApiKey('never_created_key'))).toBeNull();
      expect(await s.get('k_doesnotexist')).toBeNull();
    });

    test('create of an existing hash returns created: false and the existing record, and changes nothing', async () => {
      const s = store();
      const original = newKey({ tier: 'free', name: 'first' });
      await s.create(original);
      const duplicate = newKey({ hash: original.hash, tier: 'enterprise', name: 'second' });
      expect(await s.create(duplicate)).toEqual({ created: false, key: original });
      expect(await s.findByHash(original.hash)).toEqual(original);
      expect(await s.get(duplicate.id)).toBeNull();
      expect((await s.list(100, null)).keys).toEqual([publicOf(original)]);
    });

    test('concurrent creates of one hash: exactly one is created', async () => {
      const s = store();
      const hash = hashApiKey(`race_${randomUUID()}`);
      const results = await Promise.all(Array.from({ length: 10 }, () => s.create(newKey({ hash }))));
      const created = results.filter((r) => r.created);
      expect(created).toHaveLength(1);
      for (const r of results) expect(r.key).toEqual(created[0].key);
      expect((await s.list(100, null)).keys).toHaveLength(1);
    });

    test('list pages through 250 keys in id order with a cursor; next is null at the end; no record holds a hash', async () => {
      const s = store();
      const keys = Array.from({ length: 250 }, () => newKey());
      // Created out of order: the order of the listing is the ids', not the insertion's.
      const shuffled = [...keys].sort((a, b) => a.hash.localeCompare(b.hash));
      for (const k of shuffled) await s.create(k);
      const expectedIds = keys.map((k) => k.id).sort();

      const seen: KeyRecord[] = [];
      const nexts: Array<string | null> = [];
      let cursor: string | null = null;
      for (let page = 0; page < 10; page++) {
        const result: Awaited<ReturnType<KeyStore['list']>> = await s.list(100, cursor);
        seen.push(...result.keys);
        nexts.push(result.next);
        if (result.next === null) break;
        cursor = result.next;
      }
      expect(nexts).toEqual([expectedIds[99], expectedIds[199], null]);
      expect(seen.map((r) => r.id)).toEqual(expectedIds);
      for (const record of seen) {
        expect(Object.keys(record).sort()).toEqual(RECORD_FIELDS);
        expect(record).not.toHaveProperty('hash');
      }
      const byId = new Map(keys.map((k) => [k.id, k]));
      for (const record of seen) expect(record).toEqual(publicOf(byId.get(record.id) as StoredKey));
    });

    test('list: a page that ends exactly at the last key has next null; an empty store lists nothing', async () => {
      const empty = store();
      expect(await empty.list(10, null)).toEqual({ keys: [], next: null });

      const s = store();
      const keys = Array.from({ length: 6 }, () => newKey());
      for (const k of keys) await s.create(k);
      const ids = keys.map((k) => k.id).sort();
      const first = await s.list(3, null);
      expect(first.keys.map((k) => k.id)).toEqual(ids.slice(0, 3));
      expect(first.next).toBe(ids[2]);
      const second = await s.list(3, first.next);
      expect(second.keys.map((k) => k.id)).toEqual(ids.slice(3));
      expect(second.next).toBeNull();
      expect(await s.list(6, null)).toMatchObject({ next: null });
      expect(await s.list(10, ids[5])).toEqual({ keys: [], next: null });
    });

    test('replace with a new hash (rotate): the old hash is not found, the new one is', async () => {
      const s = store();
      const key = newKey();
      await s.create(key);
      const rotated = { ...key, hash: hashApiKey(`rotated_${randomUUID()}`) };
      expect(await s.replace(key.id, rotated)).toEqual(rotated);
      expect(await s.findByHash(key.hash)).toBeNull();
      expect(await s.findByHash(rotated.hash)).toEqual(rotated);
      expect(await s.get(key.id)).toEqual(rotated);
      expect((await s.list(100, null)).keys).toEqual([publicOf(rotated)]);
    });

    test('replace with the same hash (patch): the change is seen through the hash and the id', async () => {
      const s = store();
      const key = newKey({ tier: 'free' });
      await s.create(key);
      const patched = { ...key, tier: 'pro', disabled: true, name: 'renamed' };
      expect(await s.replace(key.id, patched)).toEqual(patched);
      expect(await s.findByHash(key.hash)).toEqual(patched);
      expect(await s.get(key.id)).toEqual(patched);
    });

    test('replace of an unknown id: null, and nothing is created', async () => {
      const s = store();
      const ghost = newKey();
      expect(await s.replace(ghost.id, ghost)).toBeNull();
      expect(await s.get(ghost.id)).toBeNull();
      expect(await s.findByHash(ghost.hash)).toBeNull();
    });

    test('delete removes the record and the hash index, and returns what it removed', async () => {
      const s = store();
      const [keep, gone] = [newKey(), newKey()];
      await s.create(keep);
      await s.create(gone);
      expect(await s.delete(gone.id)).toEqual(gone);
      expect(await s.findByHash(gone.hash)).toBeNull();
      expect(await s.get(gone.id)).toBeNull();
      expect((await s.list(100, null)).keys).toEqual([publicOf(keep)]);
      expect(await s.delete(gone.id)).toBeNull();
      expect(await s.findByHash(keep.hash)).toEqual(keep);
      // The hash is free again.
      expect((await s.create({ ...newKey(), hash: gone.hash })).created).toBe(true);
    });
  });
}

// --- the backends ---------------------------------------------------------------------

function memoryFixture(): Promise<KeyStoreFixture> {
  return Promise.resolve({ makeStore: () => new MemoryKeyStore(), close: () => Promise.resolve() });
}

async function redisFixture(): Promise<KeyStoreFixture> {
  const server = await startRedis();
  const client = new Redis(server.url);
  return {
    makeStore: () => new RedisKeyStore(client, `keys-${randomUUID().slice(0, 8)}:`),
    async close() {
      client.disconnect();
      await server.stop();
    },
  };
}

async function clusterFixture(): Promise<KeyStoreFixture> {
  const cluster = await startRedisCluster();
  const client = new Cluster(cluster.ports.map((port) => ({ host: '127.0.0.1', port })));
  return {
    makeStore: () => new RedisKeyStore(client, `keys-${randomUUID().slice(0, 8)}:`),
    async close() {
      client.disconnect();
      await cluster.stop();
    },
  };
}

describeKeyStoreContract('MemoryKeyStore', memoryFixture);
describeKeyStoreContract('RedisKeyStore on redis-server', redisFixture);
describeKeyStoreContract('RedisKeyStore on a 3-master Redis Cluster', clusterFixture);
