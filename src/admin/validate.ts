import { GatewayError } from '../errors';
import type { KeyPatch } from '../auth/keyStore';
import type { NewKey } from '../auth/keyService';
import { HEALTH_STATUSES, type HealthStatus } from '../limit/policy';

/** Admin request bodies, checked strictly (pure): a bad body changes nothing. */

function bad(message: string): GatewayError {
  return new GatewayError('invalid_request', message);
}

function object(body: unknown): Record<string, unknown> {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw bad('body must be a JSON object');
  return body as Record<string, unknown>;
}

function onlyFields(o: Record<string, unknown>, allowed: readonly string[]): void {
  for (const k of Object.keys(o)) if (!allowed.includes(k)) throw bad(`unknown field "${k}" (allowed: ${allowed.join(', ')})`);
}

function name(v: unknown): string {
  if (typeof v !== 'string' || v.length < 1 || v.length > 200) throw bad('name must be a string of 1-200 characters');
  return v;
}

function tier(v: unknown): string {
  if (typeof v !== 'string' || v.length === 0) throw bad('tier must be a tier name');
  return v;
}

export interface HealthPin {
  readonly status: HealthStatus;
  /** Seconds until the pin ends by itself; null: until DELETE /admin/health/override. */
  readonly ttlSeconds: number | null;
  readonly reason: string | null;
}

const MAX_TTL_S = 86_400;

export function parseHealthBody(body: unknown): HealthPin {
  const o = object(body);
  onlyFields(o, ['status', 'ttlSeconds', 'reason']);
  if (!HEALTH_STATUSES.includes(o.status as HealthStatus)) throw bad(`status must be one of ${HEALTH_STATUSES.join(', ')}`);
  const ttl = o.ttlSeconds ?? null;
  if (ttl !== null && (!Number.isInteger(ttl) || (ttl as number) < 1 || (ttl as number) > MAX_TTL_S)) {
    throw bad(`ttlSeconds must be a whole number 1-${MAX_TTL_S}; got ${JSON.stringify(o.ttlSeconds)}`);
  }
  const reason = o.reason ?? null;
  if (reason !== null && (typeof reason !== 'string' || reason.length > 500)) throw bad('reason must be a string of at most 500 characters');
  return { status: o.status as HealthStatus, ttlSeconds: ttl as number | null, reason: reason as string | null };
}

export function parseNewKey(body: unknown): NewKey {
  const o = object(body);
  onlyFields(o, ['tier', 'name', 'key']);
  if (o.key !== undefined && typeof o.key !== 'string') throw bad('key must be a string');
  return { tier: tier(o.tier), name: o.name === undefined ? 'unnamed' : name(o.name), ...(o.key === undefined ? {} : { key: o.key as string }) };
}

export function parseKeyPatch(body: unknown): KeyPatch {
  const o = object(body);
  onlyFields(o, ['tier', 'name', 'disabled']);
  if (Object.keys(o).length === 0) throw bad('give at least one of tier, name, disabled');
  if (o.disabled !== undefined && typeof o.disabled !== 'boolean') throw bad('disabled must be true or false');
  return {
    ...(o.tier === undefined ? {} : { tier: tier(o.tier) }),
    ...(o.name === undefined ? {} : { name: name(o.name) }),
    ...(o.disabled === undefined ? {} : { disabled: o.disabled as boolean }),
  };
}

export function parsePage(query: URLSearchParams): { limit: number; cursor: string | null } {
  const rawLimit = query.get('limit');
  const limit = rawLimit === null || rawLimit === '' ? 100 : Number(rawLimit);
  if (!Number.isInteger(limit) || limit < 1 || limit > 1000) throw bad('limit must be a whole number 1-1000');
  const cursor = query.get('cursor');
  return { limit, cursor: cursor === null || cursor === '' ? null : cursor };
}
