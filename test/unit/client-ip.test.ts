import { normalizeIp, parseCidrList, resolveClientIp } from '../../src/gateway/clientIp';

/* SPEC §3 step 1: the client IP, and TRUST_PROXY parsing. */

const TRUSTED = parseCidrList('10.0.0.0/8, 192.168.1.1, 2001:db8::/32');
const NOBODY = parseCidrList(null);

describe('resolveClientIp', () => {
  test('no TRUST_PROXY: the socket address, whatever X-Forwarded-For says', () => {
    expect(resolveClientIp('203.0.113.9', '1.2.3.4', NOBODY)).toBe('203.0.113.9');
    expect(resolveClientIp('10.0.0.1', '1.2.3.4', NOBODY)).toBe('10.0.0.1');
  });

  test('an untrusted peer cannot change its address by sending X-Forwarded-For', () => {
    const spoofs: Array<string | string[] | undefined> = [
      undefined,
      '1.2.3.4',
      '10.0.0.5',
      '1.2.3.4, 10.0.0.5',
      ['198.51.100.1', '10.9.9.9'],
      'garbage',
    ];
    for (const spoof of spoofs) expect(resolveClientIp('203.0.113.9', spoof, TRUSTED)).toBe('203.0.113.9');
    // A peer just outside a trusted single address is not trusted either.
    expect(resolveClientIp('192.168.1.2', '198.51.100.8', TRUSTED)).toBe('192.168.1.2');
  });

  test('a trusted peer: the right-most hop that is not itself trusted', () => {
    expect(resolveClientIp('10.0.0.1', '198.51.100.7', TRUSTED)).toBe('198.51.100.7');
    // Hops left of the first untrusted one are whatever the client wrote: ignored.
    expect(resolveClientIp('10.0.0.1', '1.2.3.4, 198.51.100.7', TRUSTED)).toBe('198.51.100.7');
    expect(resolveClientIp('192.168.1.1', '198.51.100.8', TRUSTED)).toBe('198.51.100.8');
  });

  test('a chain of several trusted proxies is skipped from the right', () => {
    expect(resolveClientIp('10.0.0.1', '6.6.6.6, 198.51.100.7, 10.1.1.1, 192.168.1.1, 10.2.2.2', TRUSTED)).toBe('198.51.100.7');
    // Repeated headers are one list, in order.
    expect(resolveClientIp('10.0.0.1', ['6.6.6.6, 198.51.100.7', '10.3.3.3', '10.4.4.4'], TRUSTED)).toBe('198.51.100.7');
  });

  test('every hop trusted: the left-most, the closest to the client we know', () => {
    expect(resolveClientIp('10.0.0.1', '10.2.2.2, 10.1.1.1', TRUSTED)).toBe('10.2.2.2');
  });

  test('a trusted peer without X-Forwarded-For is the client', () => {
    expect(resolveClientIp('10.0.0.1', undefined, TRUSTED)).toBe('10.0.0.1');
    expect(resolveClientIp('10.0.0.1', '', TRUSTED)).toBe('10.0.0.1');
  });

  test('IPv4-mapped IPv6 peers and hops are treated as the IPv4 address', () => {
    expect(normalizeIp('::ffff:10.0.0.1')).toBe('10.0.0.1');
    expect(normalizeIp('::ffff:abcd')).toBe('::ffff:abcd');
    expect(resolveClientIp('::ffff:10.0.0.1', '198.51.100.7', TRUSTED)).toBe('198.51.100.7');
    expect(resolveClientIp('::ffff:203.0.113.9', '198.51.100.7', TRUSTED)).toBe('203.0.113.9');
    expect(resolveClientIp('10.0.0.1', '::ffff:198.51.100.7', TRUSTED)).toBe('198.51.100.7');
    expect(resolveClientIp('10.0.0.1', '198.51.100.7, ::ffff:10.1.1.1', TRUSTED)).toBe('198.51.100.7');
  });

  test('IPv6 CIDRs: peers and hops inside the range are trusted, outside are not', () => {
    expect(resolveClientIp('2001:db8:ffff::1', '2001:db9::1', TRUSTED)).toBe('2001:db9::1');
    expect(resolveClientIp('2001:db8::5', '198.51.100.7, 2001:db8:1::1', TRUSTED)).toBe('198.51.100.7');
    expect(resolveClientIp('2001:db9::5', '198.51.100.7', TRUSTED)).toBe('2001:db9::5');
    expect(resolveClientIp('::1', '198.51.100.7', parseCidrList('::1'))).toBe('198.51.100.7');
  });

  test('garbage in X-Forwarded-For: a garbage right-most hop is not believed, the peer stays', () => {
    expect(resolveClientIp('10.0.0.1', 'garbage', TRUSTED)).toBe('10.0.0.1');
    expect(resolveClientIp('10.0.0.1', '198.51.100.7, not-an-ip', TRUSTED)).toBe('10.0.0.1');
    expect(resolveClientIp('10.0.0.1', '198.51.100.7:1234', TRUSTED)).toBe('10.0.0.1');
    expect(resolveClientIp('10.0.0.1', '<script>, 10.1.1.1', TRUSTED)).toBe('10.0.0.1');
    // Garbage left of the answer does not matter.
    expect(resolveClientIp('10.0.0.1', 'garbage, 198.51.100.7', TRUSTED)).toBe('198.51.100.7');
  });
});

describe('parseCidrList', () => {
  test('null, empty and blank lists trust nobody', () => {
    for (const list of [null, '', '   ', ' , ']) expect(parseCidrList(list).has('10.0.0.1')).toBe(false);
  });

  test('CIDRs and bare addresses (a bare address is a /32 or /128), spaces around entries allowed', () => {
    const list = parseCidrList(' 10.0.0.0/8 ,127.0.0.1, ::1 , 2001:db8::/32,172.16.0.0/12 ');
    for (const ip of ['10.255.0.1', '127.0.0.1', '::1', '2001:db8:1:2::3', '172.31.255.255']) expect(list.has(ip)).toBe(true);
    for (const ip of ['11.0.0.1', '127.0.0.2', '::2', '2001:db9::1', '172.32.0.0', 'garbage', '']) expect(list.has(ip)).toBe(false);
  });

  test('an IPv4 range also matches the IPv4-mapped IPv6 form', () => {
    expect(parseCidrList('10.0.0.0/8').has('::ffff:10.1.2.3')).toBe(true);
  });

  test('/0 trusts everything of that family', () => {
    const all4 = parseCidrList('0.0.0.0/0');
    expect(all4.has('203.0.113.9')).toBe(true);
    expect(all4.has('2001:db8::1')).toBe(false);
  });

  test.each([
    ['not-a-cidr', 'not-a-cidr'],
    ['10.0.0.0/8, 300.1.1.1', '300.1.1.1'],
    ['10.0.0.0/33', '10.0.0.0/33'],
    ['::1/129', '::1/129'],
    ['10.0.0.0/', '10.0.0.0/'],
    ['10.0.0.0/x', '10.0.0.0/x'],
    ['10.0.0.0/-1', '10.0.0.0/-1'],
    ['10.0.0.0/8.5', '10.0.0.0/8.5'],
    ['127.0.0.1, localhost', 'localhost'],
    ['10.0.0.0/8/9', '10.0.0.0/8/9'],
  ])('%p is rejected, naming the bad entry', (list, entry) => {
    expect(() => parseCidrList(list)).toThrow(entry);
  });
});
