import { BlockList, isIP } from 'node:net';

/** Trusted proxy ranges; node's BlockList does the CIDR matching for IPv4 and IPv6. */
export interface TrustedProxies {
  has(ip: string): boolean;
}

const NONE: TrustedProxies = { has: () => false };

/** "::ffff:10.0.0.1" (IPv4 on a dual-stack socket) → "10.0.0.1" */
export function normalizeIp(ip: string): string {
  return ip.startsWith('::ffff:') && isIP(ip.slice(7)) === 4 ? ip.slice(7) : ip;
}

/** Parses "10.0.0.0/8, 127.0.0.1, ::1" (a bare address is a /32 or /128). Throws naming the bad entry. */
export function parseCidrList(list: string | null): TrustedProxies {
  if (list === null || list.trim() === '') return NONE;
  const blocks = new BlockList();
  for (const entry of list.split(',').map((s) => s.trim()).filter(Boolean)) {
    const parts = entry.split('/');
    if (parts.length > 2) throw new Error(`must be a comma list of CIDRs; "${entry}" is not an IP address or CIDR`);
    const [addr, bitsText] = parts;
    const family = isIP(addr);
    if (family === 0) throw new Error(`must be a comma list of CIDRs; "${entry}" is not an IP address or CIDR`);
    const type = family === 4 ? 'ipv4' : 'ipv6';
    const max = family === 4 ? 32 : 128;
    const bits = bitsText === undefined ? max : Number(bitsText);
    if (!Number.isInteger(bits) || bits < 0 || bits > max || (bitsText !== undefined && !/^\d+$/.test(bitsText))) {
      throw new Error(`must be a comma list of CIDRs; "${entry}" has a bad prefix length`);
    }
    blocks.addSubnet(addr, bits, type);
  }
  return {
    has(ip: string): boolean {
      const family = isIP(ip);
      return family !== 0 && blocks.check(ip, family === 4 ? 'ipv4' : 'ipv6');
    },
  };
}

/**
 * The client's address: the socket's, or — when the socket's peer is a trusted proxy —
 * the right-most X-Forwarded-For hop that is not itself trusted. Hops left of an
 * untrusted one are ignored because a client can write anything there.
 */
export function resolveClientIp(socketIp: string, forwardedFor: string | string[] | undefined, trusted: TrustedProxies): string {
  const peer = normalizeIp(socketIp);
  if (forwardedFor === undefined || !trusted.has(peer)) return peer;
  const hops = (Array.isArray(forwardedFor) ? forwardedFor.join(',') : forwardedFor).split(',');
  for (let i = hops.length - 1; i >= 0; i--) {
    const hop = normalizeIp(hops[i].trim());
    if (isIP(hop) === 0) return peer; // garbage in the chain: stop believing it
    if (!trusted.has(hop)) return hop;
  }
  // Every hop is trusted: the left-most is the closest we know to the client.
  const first = normalizeIp(hops[0].trim());
  return isIP(first) === 0 ? peer : first;
}
