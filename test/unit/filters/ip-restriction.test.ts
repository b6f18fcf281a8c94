import assert from 'node:assert/strict';
import { isIP } from 'node:net';
import { describe, it } from 'node:test';
import pino from 'pino';
import { validateConfig } from '../../../src/config/load.js';
import type { Exchange } from '../../../src/exchange/exchange.js';
import { compileFilters } from '../../../src/filters/index.js';
import { AddressSet, canonicalIp, createIpRestriction, ipRestrictionFilter, parseIp, realClientIp } from '../../../src/filters/ip-restriction.js';
import type { FilterContext, FilterInstance } from '../../../src/filters/types.js';
import { seeded } from '../../helpers/random.js';

/** The filter compiled through the filter chain compiler, as a config does. */
function filter(entry: Record<string, unknown>): FilterInstance {
  const ctx = { store: undefined, log: pino({ level: 'silent' }), metrics: undefined } as unknown as Omit<FilterContext, 'previous'>;
  return compileFilters([{ type: 'ip_restriction', ...entry }], ctx, 'filters', new Map()).chain[0]!;
}

/** The compile error of a filter entry (its message names the key). */
function compileError(entry: Record<string, unknown>): string {
  try {
    filter(entry);
  } catch (e) {
    return (e as Error).message;
  }
  return '(compiled)';
}

const fakeEx = (clientIp: string): Exchange => ({ clientIp, vars: {} }) as unknown as Exchange;

function verdict(f: FilterInstance, ip: string): number | 'pass' {
  const r = f.onRequest!(fakeEx(ip));
  if (r === undefined) return 'pass';
  assert.ok(r && !(r instanceof Promise));
  assert.equal(r.flag, 'IP');
  return r.status;
}

describe('parseIp', () => {
  it('reads IPv4 and IPv6, and IPv4-mapped IPv6 as IPv4', () => {
    assert.equal(parseIp('192.0.2.1'), 4);
    assert.equal(parseIp('2001:db8::1'), 6);
    assert.equal(parseIp('::'), 6);
    assert.equal(parseIp('::ffff:192.0.2.1'), 4);
    assert.equal(parseIp('::FFFF:c000:201'), 4);
    assert.equal(canonicalIp('::ffff:c000:201'), '192.0.2.1');
    assert.equal(canonicalIp('::ffff:127.0.0.1'), '127.0.0.1');
    assert.equal(canonicalIp('2001:DB8:0:0:0::1'), '2001:db8::1');
    assert.equal(canonicalIp('1:0:0:2:0:0:0:3'), '1:0:0:2::3');
    assert.equal(canonicalIp('fe80::1%eth0'), 'fe80::1', 'a zone is ignored');
  });

  it('refuses what is not an address', () => {
    for (const s of ['', ' 1.2.3.4', '1.2.3.4 ', '1.2.3', '1.2.3.4.5', '01.2.3.4', '256.0.0.1', '1.2.3.4/8', '1::2::3', ':1::2', '1::2:', '12345::', 'g::', '1:2:3:4:5:6:7:8:9', '::ffff:01.2.3.4', '1.2.3.4%eth0', 'fe80::1%', 'unknown']) {
      assert.equal(parseIp(s), 0, s);
    }
  });

  it('agrees with node:net isIP on generated strings', () => {
    const rnd = seeded(7);
    const alphabet = '0123456789abcdefABCDEF:.';
    let valid = 0;
    for (let i = 0; i < 100_000; i++) {
      let s: string;
      if (rnd(3) === 0) {
        s = '';
        const n = 1 + rnd(20);
        for (let k = 0; k < n; k++) s += alphabet[rnd(alphabet.length)];
      } else {
        const groups: string[] = [];
        for (let k = rnd(10); k > 0; k--) groups.push(rnd(10) === 0 ? '' : rnd(0x1ffff).toString(16));
        s = groups.join(':');
        if (rnd(3) === 0) s += `${rnd(2) ? ':' : ''}${rnd(300)}.${rnd(300)}.${rnd(3)}.${rnd(260)}`;
        if (rnd(5) === 0) s = s.replace(':', '::');
        if (rnd(10) === 0) s = `::${s}`;
        if (rnd(10) === 0) s += '::';
      }
      const ours = parseIp(s);
      if (ours) valid++;
      assert.equal(ours !== 0, isIP(s) !== 0, JSON.stringify(s));
    }
    assert.ok(valid > 1000, `enough valid addresses generated (${valid})`);
  });
});

describe('AddressSet', () => {
  it('CIDR edges: /0, /32, /128 and the bits around a boundary', () => {
    const all4 = new AddressSet(['0.0.0.0/0']);
    assert.ok(all4.has('0.0.0.0') && all4.has('255.255.255.255') && all4.has('::ffff:1.2.3.4'));
    assert.ok(!all4.has('::1'), 'an IPv4 /0 covers no IPv6 address');

    const one = new AddressSet(['192.0.2.7/32']);
    assert.ok(one.has('192.0.2.7'));
    assert.ok(!one.has('192.0.2.6') && !one.has('192.0.2.8'));

    const one6 = new AddressSet(['2001:db8::7/128']);
    assert.ok(one6.has('2001:db8::7') && one6.has('2001:0DB8:0:0:0:0:0:7'));
    assert.ok(!one6.has('2001:db8::6') && !one6.has('2001:db8::8'));

    const net = new AddressSet(['10.0.0.0/8', '172.16.0.0/12', '2001:db8:8000::/33']);
    assert.ok(net.has('10.255.255.255') && !net.has('11.0.0.0') && !net.has('9.255.255.255'));
    assert.ok(net.has('172.31.255.255') && !net.has('172.32.0.0') && !net.has('172.15.255.255'));
    assert.ok(net.has('2001:db8:8000::1') && net.has('2001:db8:ffff:ffff::') && !net.has('2001:db8:7fff:ffff::'));

    const all6 = new AddressSet(['::/0']);
    assert.ok(all6.has('::') && all6.has('ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff'));
    assert.ok(all6.has('1.2.3.4'), '::/0 covers ::ffff:0:0/96, so every IPv4 address');
  });

  it('host bits under the prefix are ignored (10.1.2.3/8 is 10.0.0.0/8)', () => {
    const s = new AddressSet(['10.1.2.3/8', '2001:db8::1/32']);
    assert.ok(s.has('10.200.0.1') && s.has('2001:db8:ffff::'));
  });

  it('IPv4-mapped IPv6 entries are IPv4 entries, and mapped addresses IPv4 addresses', () => {
    const s = new AddressSet(['::ffff:192.168.0.0/112', '::ffff:127.0.0.1']);
    assert.ok(s.has('192.168.3.4') && s.has('::ffff:192.168.3.4') && s.has('::ffff:c0a8:304'));
    assert.ok(!s.has('192.169.0.0'));
    assert.ok(s.has('127.0.0.1'));
    const v4 = new AddressSet(['127.0.0.0/8']);
    assert.ok(v4.has('::ffff:127.0.0.1'));
    assert.ok(!v4.has('::127.0.0.1'), 'IPv4-compatible (not mapped) stays IPv6');
  });

  it('a longer prefix under a shorter one, in either order', () => {
    for (const list of [['10.0.0.0/8', '10.1.0.0/16'], ['10.1.0.0/16', '10.0.0.0/8']]) {
      const s = new AddressSet(list);
      assert.ok(s.has('10.1.2.3') && s.has('10.2.3.4') && !s.has('11.0.0.0'), list.join(' '));
    }
  });

  it('refuses a bad entry naming its index', () => {
    for (const bad of ['10.0.0.0/33', '2001:db8::/129', 'example.com', '10.0.0.0/', '10.0.0.0/-1', '10.0.0.0/8/8', 'fe80::1%eth0', '1.2.3.4/ 8']) {
      assert.throws(() => new AddressSet(['127.0.0.1', bad]), /^Error: \[1\]: not an IP address or CIDR$/, bad);
    }
  });
});

describe('ip_restriction filter', () => {
  it('deny: a denied address gets 403 with flag IP, others pass', () => {
    const f = filter({ deny: ['10.0.0.0/8', '2001:db8::/32'] });
    assert.equal(f.phase, 'access');
    assert.equal(verdict(f, '10.1.2.3'), 403);
    assert.equal(verdict(f, '::ffff:10.1.2.3'), 403);
    assert.equal(verdict(f, '2001:db8::5'), 403);
    assert.equal(verdict(f, '192.0.2.1'), 'pass');
    assert.equal(verdict(f, '2001:db9::5'), 'pass');
  });

  it('allow only: anything not in the list is refused', () => {
    const f = filter({ allow: ['192.0.2.0/24', '::1'] });
    assert.equal(verdict(f, '192.0.2.200'), 'pass');
    assert.equal(verdict(f, '::1'), 'pass');
    assert.equal(verdict(f, '192.0.3.1'), 403);
    assert.equal(verdict(f, '::2'), 403);
  });

  it('deny wins over allow', () => {
    const f = filter({ allow: ['10.0.0.0/8'], deny: ['10.6.6.0/24'] });
    assert.equal(verdict(f, '10.1.1.1'), 'pass');
    assert.equal(verdict(f, '10.6.6.6'), 403);
    assert.equal(verdict(f, '11.0.0.1'), 403);
    const same = filter({ allow: ['10.0.0.1'], deny: ['10.0.0.1'] });
    assert.equal(verdict(same, '10.0.0.1'), 403);
  });

  it('a client address that cannot be read is refused', () => {
    assert.equal(verdict(filter({ deny: ['10.0.0.0/8'] }), ''), 403);
  });

  it('marks the rejection for the rejections metric', () => {
    const ex = fakeEx('10.0.0.1');
    createIpRestriction({ type: 'ip_restriction', deny: ['10.0.0.0/8'] }).onRequest!(ex);
    assert.equal(ex.vars.rejectedBy, 'ip_restriction');
  });

  it('bad entries are refused at compile with the key path named', () => {
    assert.equal(compileError({ deny: ['10.0.0.0/8', '::1', 'nope'] }), 'filters[0].deny[2]: not an IP address or CIDR');
    assert.equal(compileError({ allow: ['10.0.0.0/40'] }), 'filters[0].allow[0]: not an IP address or CIDR');
    assert.equal(compileError({ deny: ['2001:db8::/129'] }), 'filters[0].deny[0]: not an IP address or CIDR');
    assert.equal(compileError({ deny: [42] }), 'filters[0].deny[0]: Invalid input: expected string, received number');
    assert.match(compileError({ allow: [] }), /^filters\[0\]\.allow: an empty allow list would refuse every client/);
    assert.equal(compileError({}), 'filters[0]: give allow, deny or both');
    assert.match(compileError({ deny: ['10.0.0.0/8'], allowed: ['x'] }), /^filters\[0\]: Unrecognized key: "allowed"/);
  });

  it('is a registered filter kind, usable globally and per route', () => {
    assert.equal(ipRestrictionFilter.type, 'ip_restriction');
    const cfg = validateConfig({
      listeners: [{ name: 'public', address: '127.0.0.1:0' }],
      filters: [{ type: 'ip_restriction', deny: ['10.0.0.0/8'] }],
      routes: [{ name: 'r', directResponse: { status: 200 }, filters: [{ type: 'ip_restriction', allow: ['127.0.0.1'] }] }],
    });
    assert.equal(cfg.filters[0]!.type, 'ip_restriction');
  });
});

describe('listener trustedProxies', () => {
  it('defaults to none and refuses a bad entry naming its key', () => {
    const ok = validateConfig({ listeners: [{ name: 'public', address: '127.0.0.1:0' }] });
    assert.deepEqual(ok.listeners[0]!.trustedProxies, []);
    const withProxies = validateConfig({ listeners: [{ name: 'public', address: '127.0.0.1:0', trustedProxies: ['10.0.0.0/8', '::1', '::ffff:127.0.0.1/128'] }] });
    assert.equal(withProxies.listeners[0]!.trustedProxies.length, 3);
    assert.throws(
      () => validateConfig({ listeners: [{ name: 'public', address: '127.0.0.1:0', trustedProxies: ['10.0.0.0/8', 'lb.internal'] }] }),
      (e: Error) => e.message.includes('listeners[0].trustedProxies[1]: not an IP address or CIDR'),
    );
  });
});

describe('realClientIp (real_ip_recursive)', () => {
  const trusted = new AddressSet(['127.0.0.1', '10.0.0.0/8', 'fd00::/8']);
  const xff = (...values: string[]): string[] => values.flatMap((v) => ['X-Forwarded-For', v]);

  it('an untrusted peer is the client, whatever X-Forwarded-For says', () => {
    assert.equal(realClientIp('198.51.100.1', xff('203.0.113.9'), trusted), '198.51.100.1');
    assert.equal(realClientIp('198.51.100.1', xff('127.0.0.1'), trusted), '198.51.100.1');
  });

  it('a trusted peer: the first untrusted address from the right', () => {
    assert.equal(realClientIp('127.0.0.1', xff('203.0.113.9, 127.0.0.1'), trusted), '203.0.113.9');
    assert.equal(realClientIp('127.0.0.1', xff('1.1.1.1, 203.0.113.9, 10.2.3.4, 10.9.9.9'), trusted), '203.0.113.9', 'a client-supplied address left of it is ignored');
    assert.equal(realClientIp('10.0.0.1', xff('2001:DB8:0::9, fd00::1'), trusted), '2001:db8::9');
    assert.equal(realClientIp('127.0.0.1', xff('::ffff:203.0.113.9'), trusted), '203.0.113.9');
  });

  it('several X-Forwarded-For fields are one list, in order', () => {
    assert.equal(realClientIp('127.0.0.1', xff('9.9.9.9', '203.0.113.9, 10.0.0.5'), trusted), '203.0.113.9');
    assert.equal(realClientIp('127.0.0.1', xff('9.9.9.9', '10.0.0.5, '), trusted), '9.9.9.9');
    assert.equal(realClientIp('127.0.0.1', ['x-forwarded-for', '9.9.9.9', 'Host', 'a', 'X-FORWARDED-FOR', '10.0.0.1'], trusted), '9.9.9.9');
  });

  it('all hops trusted: the leftmost; no header: the peer', () => {
    assert.equal(realClientIp('127.0.0.1', xff('10.0.0.1, 10.0.0.2'), trusted), '10.0.0.1');
    assert.equal(realClientIp('127.0.0.1', ['Host', 'a'], trusted), '127.0.0.1');
    assert.equal(realClientIp('127.0.0.1', xff(''), trusted), '127.0.0.1');
  });

  it('an entry that is not an address stops the walk at the last trusted hop', () => {
    assert.equal(realClientIp('127.0.0.1', xff('203.0.113.9, unknown, 10.0.0.7'), trusted), '10.0.0.7');
    assert.equal(realClientIp('127.0.0.1', xff('203.0.113.9, unknown'), trusted), '127.0.0.1');
  });

  it('entries with ports', () => {
    assert.equal(realClientIp('127.0.0.1', xff('203.0.113.9:4711'), trusted), '203.0.113.9');
    assert.equal(realClientIp('127.0.0.1', xff('[2001:db8::9]:443'), trusted), '2001:db8::9');
    assert.equal(realClientIp('127.0.0.1', xff('[2001:db8::9]'), trusted), '2001:db8::9');
    assert.equal(realClientIp('127.0.0.1', xff('[203.0.113.9]:1'), trusted), '127.0.0.1', 'IPv4 in brackets is not an entry');
  });
});
