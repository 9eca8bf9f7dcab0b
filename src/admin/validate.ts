import { GatewayError } from '../errors';
import type { KeyPatch } from '../auth/keyStore';
import type { NewKey } from '../auth/keyService';
import { HEALTH_STATUSES, type HealthStatus } from '../limit/policy';
import { parseKeyLimits, type KeyLimits } from '../limit/planLimits';
import type { QuotaChange } from '../limit/store';

export const IDENTITY_FORMAT = /^[A-Za-z0-9._:-]{1,64}$/;
const ISO_DATE_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})$/;
export const MAX_GRACE_S = 604_800;

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

function identity(v: unknown): string {
  if (typeof v !== 'string' || !IDENTITY_FORMAT.test(v)) throw bad(`identity must be 1-64 of [A-Za-z0-9._:-]; got ${JSON.stringify(v)}`);
  return v;
}

/** ISO-8601 date and time with a zone, stored normalised to UTC. */
function expiresAt(v: unknown): string {
  const ms = typeof v === 'string' && ISO_DATE_TIME.test(v) ? Date.parse(v) : NaN;
  if (!Number.isFinite(ms)) throw bad(`expiresAt must be an ISO-8601 date and time with a zone, e.g. "2027-01-31T00:00:00Z"; got ${JSON.stringify(v)}`);
  return new Date(ms).toISOString();
}

function limits(v: unknown): KeyLimits {
  const r = parseKeyLimits(v);
  if (!r.ok) throw new GatewayError('invalid_request', `invalid limits: ${r.reasons.join('; ')}`, { reasons: r.reasons });
  return r.limits;
}

export function parseNewKey(body: unknown): NewKey {
  const o = object(body);
  onlyFields(o, ['tier', 'name', 'key', 'identity', 'expiresAt', 'limits']);
  if (o.key !== undefined && typeof o.key !== 'string') throw bad('key must be a string');
  return {
    tier: tier(o.tier), name: o.name === undefined ? 'unnamed' : name(o.name),
    ...(o.key === undefined ? {} : { key: o.key as string }),
    ...(o.identity === undefined ? {} : { identity: identity(o.identity) }),
    ...(o.expiresAt === undefined ? {} : { expiresAt: expiresAt(o.expiresAt) }),
    ...(o.limits === undefined || o.limits === null ? {} : { limits: limits(o.limits) }),
  };
}

export function parseKeyPatch(body: unknown): KeyPatch {
  const o = object(body);
  const fields = ['tier', 'name', 'disabled', 'identity', 'expiresAt', 'limits'];
  onlyFields(o, fields);
  if (Object.keys(o).length === 0) throw bad(`give at least one of ${fields.join(', ')}`);
  if (o.disabled !== undefined && typeof o.disabled !== 'boolean') throw bad('disabled must be true or false');
  return {
    ...(o.tier === undefined ? {} : { tier: tier(o.tier) }),
    ...(o.name === undefined ? {} : { name: name(o.name) }),
    ...(o.disabled === undefined ? {} : { disabled: o.disabled as boolean }),
    ...(o.identity === undefined ? {} : { identity: o.identity === null ? null : identity(o.identity) }),
    ...(o.expiresAt === undefined ? {} : { expiresAt: o.expiresAt === null ? null : expiresAt(o.expiresAt) }),
    ...(o.limits === undefined ? {} : { limits: o.limits === null ? null : limits(o.limits) }),
  };
}

/** `POST /admin/keys/:id/rotate`: no body, or {"graceSeconds": 0-604800}. */
export function parseRotateBody(body: unknown): number {
  if (body === undefined) return 0;
  const o = object(body);
  onlyFields(o, ['graceSeconds']);
  const g = o.graceSeconds ?? 0;
  if (!Number.isInteger(g) || (g as number) < 0 || (g as number) > MAX_GRACE_S) throw bad(`graceSeconds must be a whole number 0-${MAX_GRACE_S}; got ${JSON.stringify(o.graceSeconds)}`);
  return g as number;
}

/** `POST /admin/keys/:id/quota`: {"reset":true} or {"add":N}, N ≥ 1. */
export function parseQuotaBody(body: unknown): QuotaChange {
  const o = object(body);
  onlyFields(o, ['reset', 'add']);
  if (o.reset !== undefined && o.add !== undefined) throw bad('give either reset or add, not both');
  if (o.reset !== undefined) {
    if (o.reset !== true) throw bad('reset must be true');
    return { reset: true };
  }
  if (o.add === undefined) throw bad('give {"reset":true} or {"add":N}');
  if (!Number.isInteger(o.add) || (o.add as number) < 1 || (o.add as number) > 1_000_000_000_000) throw bad(`add must be a whole number of at least 1; got ${JSON.stringify(o.add)}`);
  return { add: o.add as number };
}

export function parsePage(query: URLSearchParams): { limit: number; cursor: string | null } {
  const rawLimit = query.get('limit');
  const limit = rawLimit === null || rawLimit === '' ? 100 : Number(rawLimit);
  if (!Number.isInteger(limit) || limit < 1 || limit > 1000) throw bad('limit must be a whole number 1-1000');
  const cursor = query.get('cursor');
  return { limit, cursor: cursor === null || cursor === '' ? null : cursor };
}
