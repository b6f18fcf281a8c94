// ip_restriction: allow and deny lists of addresses and CIDRs, checked against
// the client IP (the peer, or the real client behind trusted proxies: see
// realClientIp, used by the pipeline when the exchange is made).
//
// Why not node:net BlockList: its check() builds a SocketAddress (a JS object
// and a native handle) per call and walks every rule in turn, so a request
// costs an allocation and O(rules). Here each list compiles into two bit tries
// (IPv4, IPv6) held in typed arrays: a lookup parses the address into a
// module-level scratch array (no allocation) and walks at most as many nodes as
// the longest prefix (32 or 128), whatever the number of entries.
import { z } from 'zod';
import { IpOrCidrSchema, strict } from '../config/schema.js';
import { defineFilter, type FilterInstance, type Rejection } from './types.js';

// ---------- parsing (no allocation) ----------

/**
 * The last address parseIp read: IPv4 in WORDS[0]; IPv6 as four big-endian
 * 32-bit words. IPv4-mapped IPv6 (::ffff:a.b.c.d, ::ffff:7f00:1) comes out as
 * IPv4. Shared scratch: read it before the next parse.
 */
const WORDS = new Uint32Array(4);
const GROUPS = new Uint16Array(8);

function hexValue(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  const l = c | 0x20;
  if (l >= 97 && l <= 102) return l - 87;
  return -1;
}

/** Dotted-quad IPv4 in s[i, end) (no leading zeros, as node:net isIPv4) into WORDS[0]: false when it is not one. */
function parseV4(s: string, i: number, end: number): boolean {
  let value = 0;
  for (let part = 0; part < 4; part++) {
    if (part > 0) {
      if (i >= end || s.charCodeAt(i) !== 46 /* . */) return false;
      i++;
    }
    const start = i;
    let octet = 0;
    while (i < end) {
      const c = s.charCodeAt(i);
      if (c < 48 || c > 57) break;
      octet = octet * 10 + (c - 48);
      i++;
      if (i - start > 3) return false;
    }
    if (i === start || octet > 255 || (i - start > 1 && s.charCodeAt(start) === 48)) return false;
    value = (value << 8) | octet; // int32 arithmetic; WORDS reads it back as uint32
  }
  if (i !== end) return false;
  WORDS[0] = value;
  return true;
}

/** IPv6 in s[i, end) into GROUPS: true when well formed (RFC 4291 text forms, an IPv4 tail allowed). */
function parseV6(s: string, i: number, end: number): boolean {
  let n = 0;
  let gap = -1;
  if (i + 1 < end && s.charCodeAt(i) === 58 && s.charCodeAt(i + 1) === 58) {
    gap = 0;
    i += 2;
  } else if (i < end && s.charCodeAt(i) === 58) return false;
  while (i < end) {
    const start = i;
    let v = 0;
    while (i < end) {
      const h = hexValue(s.charCodeAt(i));
      if (h < 0) break;
      v = (v << 4) | h;
      i++;
      if (i - start > 4) return false;
    }
    if (i < end && s.charCodeAt(i) === 46 /* . */) {
      // an IPv4 tail: the last 32 bits
      if (n > 6) return false;
      if (!parseV4(s, start, end)) return false;
      GROUPS[n++] = WORDS[0]! >>> 16;
      GROUPS[n++] = WORDS[0]! & 0xffff;
      i = end;
      break;
    }
    if (i === start || n === 8) return false;
    GROUPS[n++] = v;
    if (i === end) break;
    if (s.charCodeAt(i) !== 58 /* : */) return false;
    i++;
    if (i < end && s.charCodeAt(i) === 58) {
      if (gap >= 0) return false;
      gap = n;
      i++;
    } else if (i === end) return false; // a single trailing colon
  }
  if (gap < 0) return n === 8;
  if (n > 7) return false;
  // "::" stands for the missing groups: move what follows it to the end.
  const tail = n - gap;
  for (let k = 0; k < tail; k++) GROUPS[7 - k] = GROUPS[n - 1 - k]!;
  for (let k = gap; k < 8 - tail; k++) GROUPS[k] = 0;
  return true;
}

/**
 * Parse an IPv4 or IPv6 address in s[start, end) into WORDS: 4, 6, or 0 when
 * it is not one. IPv4-mapped IPv6 gives 4. An IPv6 zone (%eth0) is ignored.
 */
export function parseIp(s: string, start = 0, end = s.length): 0 | 4 | 6 {
  if (parseV4(s, start, end)) return 4;
  const zone = s.indexOf('%', start);
  if (zone >= 0 && zone < end) {
    if (zone === end - 1) return 0;
    end = zone;
  }
  if (!parseV6(s, start, end)) return 0;
  const g = GROUPS;
  if (g[0] === 0 && g[1] === 0 && g[2] === 0 && g[3] === 0 && g[4] === 0 && g[5] === 0xffff) {
    WORDS[0] = (g[6]! << 16) | g[7]!;
    return 4;
  }
  WORDS[0] = (g[0]! << 16) | g[1]!;
  WORDS[1] = (g[2]! << 16) | g[3]!;
  WORDS[2] = (g[4]! << 16) | g[5]!;
  WORDS[3] = (g[6]! << 16) | g[7]!;
  return 6;
}

/** The canonical text of the address parseIp just read (dotted quad, or RFC 5952 IPv6). */
function formatParsed(family: 4 | 6): string {
  if (family === 4) {
    const v = WORDS[0]!;
    return `${v >>> 24}.${(v >>> 16) & 255}.${(v >>> 8) & 255}.${v & 255}`;
  }
  const g: number[] = [];
  for (let k = 0; k < 4; k++) g.push(WORDS[k]! >>> 16, WORDS[k]! & 0xffff);
  // the longest run of two or more zero groups becomes "::" (the first, on a tie)
  let best = -1;
  let bestLen = 1;
  for (let k = 0; k < 8; ) {
    if (g[k] !== 0) {
      k++;
      continue;
    }
    let e = k;
    while (e < 8 && g[e] === 0) e++;
    if (e - k > bestLen) {
      best = k;
      bestLen = e - k;
    }
    k = e;
  }
  const hex = (a: number, b: number): string => g.slice(a, b).map((x) => x.toString(16)).join(':');
  return best < 0 ? hex(0, 8) : `${hex(0, best)}::${hex(best + bestLen, 8)}`;
}

/** The canonical text of an address (IPv4-mapped IPv6 as IPv4), or undefined when it is not one. */
export function canonicalIp(s: string): string | undefined {
  const f = parseIp(s);
  return f === 0 ? undefined : formatParsed(f);
}

// ---------- the compiled set ----------

/** A binary trie of prefixes over `bits`-bit addresses read from WORDS. Node 0 is the root; child 0 = none. */
class PrefixTrie {
  private zero: Int32Array;
  private one: Int32Array;
  private term: Uint8Array;
  private size = 1;

  constructor(private readonly bits: 32 | 128) {
    this.zero = new Int32Array(16);
    this.one = new Int32Array(16);
    this.term = new Uint8Array(16);
  }

  get empty(): boolean {
    return this.size === 1 && this.term[0] === 0;
  }

  /** Add the prefix of `len` bits of `words`. */
  insert(words: ArrayLike<number>, len: number): void {
    let node = 0;
    for (let i = 0; i < len; i++) {
      if (this.term[node]) return; // a shorter prefix already covers it
      const bit = (words[i >>> 5]! >>> (31 - (i & 31))) & 1;
      const next = bit ? this.one : this.zero;
      let child = next[node]!;
      if (child === 0) {
        child = this.grow();
        (bit ? this.one : this.zero)[node] = child;
      }
      node = child;
    }
    this.term[node] = 1;
    // longer prefixes below it are covered now
    this.zero[node] = 0;
    this.one[node] = 0;
  }

  private grow(): number {
    if (this.size === this.term.length) {
      const cap = this.size * 2;
      const z0 = new Int32Array(cap);
      z0.set(this.zero);
      const o1 = new Int32Array(cap);
      o1.set(this.one);
      const t = new Uint8Array(cap);
      t.set(this.term);
      this.zero = z0;
      this.one = o1;
      this.term = t;
    }
    return this.size++;
  }

  /** Whether the address in WORDS falls in a prefix: at most `bits` steps. */
  matches(): boolean {
    const zero = this.zero;
    const one = this.one;
    const term = this.term;
    const words = this.bits >>> 5;
    let node = 0;
    for (let k = 0; k < words; k++) {
      const w = WORDS[k]! | 0;
      for (let b = 31; b >= 0; b--) {
        if (term[node] === 1) return true;
        node = ((w >>> b) & 1) === 1 ? one[node]! : zero[node]!;
        if (node === 0) return false;
      }
    }
    return term[node] === 1;
  }
}

/** The first 96 bits of an IPv4-mapped IPv6 address (::ffff:0:0/96). */
const MAPPED_PREFIX = [0, 0, 0xffff];

/**
 * A set of addresses and CIDRs, IPv4 and IPv6. IPv4-mapped IPv6 entries are
 * IPv4 entries; an IPv6 prefix shorter than /96 that covers ::ffff:0:0/96
 * (::/0, ::/64...) also covers every IPv4 address.
 */
export class AddressSet {
  private readonly v4 = new PrefixTrie(32);
  private readonly v6 = new PrefixTrie(128);
  readonly size: number;

  /** Throws `[index]: not an IP address or CIDR` for a bad entry. */
  constructor(entries: readonly string[]) {
    const words = new Uint32Array(4);
    entries.forEach((entry, index) => {
      const slash = entry.indexOf('/');
      const addrEnd = slash < 0 ? entry.length : slash;
      const family = entry.includes('%') ? 0 : parseIp(entry, 0, addrEnd);
      // written as IPv6 (IPv4-mapped included): prefixes count 128 bits
      const v6text = entry.lastIndexOf(':', addrEnd) >= 0;
      const max = v6text ? 128 : 32;
      const len = slash < 0 ? max : /^\d{1,3}$/.test(entry.slice(slash + 1)) ? Number(entry.slice(slash + 1)) : -1;
      if (family === 0 || len < 0 || len > max) throw new Error(`[${index}]: not an IP address or CIDR`);
      if (!v6text) {
        words[0] = len === 0 ? 0 : (WORDS[0]! & (0xffffffff << (32 - len))) >>> 0;
        this.v4.insert(words, len);
        return;
      }
      if (family === 4) {
        // ::ffff:a.b.c.d/n, n >= 96: the IPv4 prefix a.b.c.d/(n - 96)
        if (len >= 96) {
          const v4len = len - 96;
          words[0] = v4len === 0 ? 0 : (WORDS[0]! & (0xffffffff << (32 - v4len))) >>> 0;
          this.v4.insert(words, v4len);
          return;
        }
        words[0] = 0;
        words[1] = 0;
        words[2] = 0xffff;
        words[3] = WORDS[0]!;
      } else words.set(WORDS);
      this.v6.insert(words, len);
      // an IPv6 prefix shorter than /96 that covers ::ffff:0:0/96 covers every IPv4 address too
      if (len < 96 && coversMapped(words, len)) this.v4.insert(words, 0);
    });
    this.size = entries.length;
  }

  get empty(): boolean {
    return this.v4.empty && this.v6.empty;
  }

  /** Whether the address parseIp just read (family 4 or 6) is in the set. */
  hasParsed(family: 4 | 6): boolean {
    return family === 4 ? this.v4.matches() : this.v6.matches();
  }

  /** Whether an address is in the set (false for a string that is not an address). */
  has(address: string): boolean {
    const f = parseIp(address);
    return f !== 0 && this.hasParsed(f);
  }
}

function coversMapped(words: Uint32Array, len: number): boolean {
  for (let i = 0; i < len; i++) {
    const bit = (words[i >>> 5]! >>> (31 - (i & 31))) & 1;
    const mapped = (MAPPED_PREFIX[i >>> 5]! >>> (31 - (i & 31))) & 1;
    if (bit !== mapped) return false;
  }
  return true;
}

// ---------- the real client IP ----------

/**
 * Parse one X-Forwarded-For entry s[a, b): an address, [v6]:port or
 * a.b.c.d:port. Returns the family (address in WORDS) or 0.
 */
function parseForwardedEntry(s: string, a: number, b: number): 0 | 4 | 6 {
  const f = parseIp(s, a, b);
  if (f !== 0) return f;
  if (s.charCodeAt(a) === 91 /* [ */) {
    const close = s.indexOf(']', a);
    if (close < 0 || close >= b || (close + 1 < b && !isPort(s, close + 1, b))) return 0;
    const g = parseIp(s, a + 1, close);
    return g === 6 || (g === 4 && s.lastIndexOf(':', close) > a) ? g : 0;
  }
  const colon = s.lastIndexOf(':', b - 1);
  if (colon > a && s.indexOf(':', a) === colon && isPort(s, colon, b)) return parseIp(s, a, colon) === 4 ? 4 : 0;
  return 0;
}

/** s[i, end) is ":" and 1-5 digits. */
function isPort(s: string, i: number, end: number): boolean {
  if (s.charCodeAt(i) !== 58 || end - i < 2 || end - i > 6) return false;
  for (let k = i + 1; k < end; k++) {
    const c = s.charCodeAt(k);
    if (c < 48 || c > 57) return false;
  }
  return true;
}

/**
 * The client IP of a request (nginx real_ip_recursive): the peer address,
 * unless the peer is a trusted proxy; then X-Forwarded-For is read from the
 * right, past every trusted hop, and the first untrusted address is the
 * client. All hops trusted: the leftmost. An entry that is not an address
 * stops the walk: the client is the last trusted hop read (a client cannot
 * hide behind garbage). Multiple X-Forwarded-For fields count as one list, in
 * order. The answer is canonical text (IPv4-mapped IPv6 as IPv4).
 */
export function realClientIp(peer: string, rawHeaders: readonly string[], trusted: AddressSet): string {
  const pf = parseIp(peer);
  if (pf === 0 || !trusted.hasParsed(pf)) return peer;
  let client = peer;
  for (let i = rawHeaders.length - 2; i >= 0; i -= 2) {
    const name = rawHeaders[i]!;
    if (name.length !== 15 || name.toLowerCase() !== 'x-forwarded-for') continue;
    const v = rawHeaders[i + 1]!;
    let end = v.length;
    while (end > 0) {
      let b = end;
      while (b > 0 && (v.charCodeAt(b - 1) === 32 || v.charCodeAt(b - 1) === 9)) b--;
      let a = b;
      while (a > 0 && v.charCodeAt(a - 1) !== 44 /* , */) a--;
      end = a - 1;
      while (a < b && (v.charCodeAt(a) === 32 || v.charCodeAt(a) === 9)) a++;
      if (a === b) continue; // an empty entry
      const f = parseForwardedEntry(v, a, b);
      if (f === 0) return client;
      client = formatParsed(f);
      if (!trusted.hasParsed(f)) return client;
    }
  }
  return client;
}

// ---------- the filter ----------

export const IpRestrictionFilterSchema = strict({
  type: z.literal('ip_restriction'),
  /** Only these addresses and CIDRs pass (deny still wins). Left out: every address not denied passes. */
  allow: z.array(IpOrCidrSchema).min(1, 'an empty allow list would refuse every client; leave allow out to allow all').optional(),
  /** These addresses and CIDRs are refused (403, flag IP), whatever allow says. */
  deny: z.array(IpOrCidrSchema).optional(),
}).refine((c) => c.allow !== undefined || c.deny !== undefined, 'give allow, deny or both');

type IpRestrictionConfig = z.output<typeof IpRestrictionFilterSchema>;

export const ipRestrictionFilter = defineFilter({
  type: 'ip_restriction',
  schema: IpRestrictionFilterSchema,
  create: (config) => createIpRestriction(config),
});

const REFUSED: Rejection = Object.freeze({ status: 403, flag: 'IP' }) as Rejection;

function compileList(entries: readonly string[], key: string): AddressSet {
  try {
    return new AddressSet(entries);
  } catch (e) {
    throw new Error(`${key}${(e as Error).message}`);
  }
}

export function createIpRestriction(config: IpRestrictionConfig): FilterInstance {
  const deny = config.deny?.length ? compileList(config.deny, 'deny') : undefined;
  const allow = config.allow ? compileList(config.allow, 'allow') : undefined;
  return {
    type: 'ip_restriction',
    phase: 'access',
    onRequest(ex) {
      const f = parseIp(ex.clientIp);
      // An address that cannot be read (the connection is already gone) is refused.
      if (f === 0 || (deny !== undefined && deny.hasParsed(f)) || (allow !== undefined && !allow.hasParsed(f))) {
        ex.vars.rejectedBy = 'ip_restriction';
        return REFUSED;
      }
      return undefined;
    },
    describe: () => ({ allow: config.allow?.length ?? 0, deny: config.deny?.length ?? 0 }),
  };
}
