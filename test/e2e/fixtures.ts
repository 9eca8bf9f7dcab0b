import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { httpRequest, type HttpResult } from '../support/http';

/** Writes a tiers file (SPEC §2 shape) to a temp dir and returns its path. */
export function writeTiers(doc: unknown, dir = mkdtempSync(path.join(tmpdir(), 'tollgate-tiers-'))): string {
  const file = path.join(dir, 'tiers.json');
  writeFileSync(file, JSON.stringify(doc));
  return file;
}

export const SHIPPED_TIERS = {
  windowSeconds: 60,
  algorithm: 'sliding-window',
  tiers: {
    free: { limit: 10, burst: 20, degraded: 2 },
    pro: { limit: 100, burst: 150 },
    enterprise: { limit: 1000, burst: 1000 },
  },
};

/**
 * The shipped free and pro limits over an hour's window, so nothing refills during a burst
 * (SPEC §2's proviso): for tests that count exact totals on a real Redis.
 */
export const HOUR_TIERS = {
  ...SHIPPED_TIERS,
  windowSeconds: 3600,
  tiers: { free: SHIPPED_TIERS.tiers.free, pro: SHIPPED_TIERS.tiers.pro },
};

export interface CreatedKey {
  id: string;
  key: string;
  tier: string;
  name: string;
  disabled: boolean;
  createdAt: string;
}

export async function createKey(adminUrl: string, tier: string, token?: string): Promise<CreatedKey> {
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (token) headers.authorization = `Bearer ${token}`;
  const r = await httpRequest(`${adminUrl}/admin/keys`, { method: 'POST', headers, body: JSON.stringify({ tier, name: `test-${tier}` }) });
  if (r.status !== 201) throw new Error(`creating a ${tier} key: ${r.status} ${r.body}`);
  return r.json<CreatedKey>();
}

export async function setHealth(adminUrl: string, status: string, token?: string): Promise<HttpResult> {
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (token) headers.authorization = `Bearer ${token}`;
  return httpRequest(`${adminUrl}/admin/health`, { method: 'PUT', headers, body: JSON.stringify({ status }) });
}

export function get(url: string, key?: string, headers: Record<string, string> = {}): Promise<HttpResult> {
  return httpRequest(url, { headers: key === undefined ? headers : { 'x-api-key': key, ...headers } });
}

/**
 * Settings for tests that count exact totals on Redis. A store call slower than
 * STORE_TIMEOUT_MS (50 ms by default) is decided by the failure mode — in process — and
 * on two shared cores under a parallel test run Redis does sometimes take that long, which
 * would count a request in two places. These tests are about exactness, not timeouts
 * (redis-faults.e2e.test.ts covers those with the default), so they give Redis a second.
 */
export const EXACT = { STORE_TIMEOUT_MS: '1000' } as const;
