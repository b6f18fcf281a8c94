// Stored passwords (basic_auth credentials, admin basic users): scrypt from
// node:crypto, in the text form
//
//   scrypt$N$r$p$<salt, base64>$<hash, base64>
//
// (`meshgate hash-password` prints one). A password is never kept or logged
// in clear: the config holds only this form.
//
// scrypt is slow on purpose, which also makes every check a CPU cost a client
// can ask for. Two things bound it: checks run on libuv's thread pool
// (crypto.scrypt, not scryptSync), so the event loop keeps serving; and a
// check that succeeded is remembered for a short while (VERIFIED_TTL_MS),
// keyed by a SHA-256 of the stored hash and the password presented, so a
// client sending the same good credentials on every request pays for one
// scrypt run, not one per request; checks of the same pair already running
// are shared (a burst of one client's requests runs scrypt once). At most
// MAX_RUNNING checks use the thread pool at a time (it has 4 threads by
// default, also used by DNS lookups, file I/O and WebCrypto: RS256 JWTs), at
// most MAX_QUEUED more wait; beyond that a check is refused as overload
// (VerifierBusy) rather than queued without bound. Failures are not
// remembered (floods of wrong passwords are for IP / CC rules, which run
// before authentication).
import { createHash, randomBytes, scrypt, timingSafeEqual } from 'node:crypto';

export interface StoredPassword {
  readonly N: number;
  readonly r: number;
  readonly p: number;
  readonly salt: Buffer;
  readonly hash: Buffer;
  /** The text form, as configured (the cache key includes it: a changed hash never hits an old entry). */
  readonly text: string;
}

export const SCRYPT_FORMAT = 'scrypt$N$r$p$<salt base64>$<hash base64>';
const B64 = /^[A-Za-z0-9+/]+={0,2}$/;

/** Parses the stored form; throws saying what is wrong (never echoing the value). */
export function parseStoredPassword(text: string): StoredPassword {
  const parts = text.split('$');
  if (parts.length !== 6 || parts[0] !== 'scrypt') throw new Error(`must be a scrypt hash (${SCRYPT_FORMAT}; make one with \`meshgate hash-password\`), not a password in clear`);
  const [, n, r, p, salt, hash] = parts as [string, string, string, string, string, string];
  const N = Number(n);
  const R = Number(r);
  const P = Number(p);
  if (!/^\d+$/.test(n) || N < 2 || (N & (N - 1)) !== 0 || N > 2 ** 20) throw new Error('scrypt N must be a power of 2 from 2 to 2^20');
  if (!/^\d+$/.test(r) || R < 1 || R > 32 || !/^\d+$/.test(p) || P < 1 || P > 16) throw new Error('scrypt r must be 1..32 and p 1..16');
  if (!B64.test(salt) || !B64.test(hash)) throw new Error('scrypt salt and hash must be base64');
  const h = Buffer.from(hash, 'base64');
  if (h.length < 16) throw new Error('scrypt hash must be at least 16 bytes');
  return { N, r: R, p: P, salt: Buffer.from(salt, 'base64'), hash: h, text };
}

function scryptAsync(password: string, s: { N: number; r: number; p: number; salt: Buffer }, keylen: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    // maxmem: scrypt needs 128 * N * r bytes; node's default cap (32 MiB) refuses large N.
    scrypt(password, s.salt, keylen, { N: s.N, r: s.r, p: s.p, maxmem: 256 * s.N * s.r + 1024 * 1024 }, (err, key) => (err ? reject(err) : resolve(key)));
  });
}

/** Hashes a password with fresh salt (N=2^15, r=8, p=1: about 32 MiB and tens of milliseconds per check). */
export async function hashPassword(password: string, opts: { N?: number; r?: number; p?: number } = {}): Promise<string> {
  const s = { N: opts.N ?? 2 ** 15, r: opts.r ?? 8, p: opts.p ?? 1, salt: randomBytes(16) };
  const hash = await scryptAsync(password, s, 32);
  return `scrypt$${s.N}$${s.r}$${s.p}$${s.salt.toString('base64')}$${hash.toString('base64')}`;
}

const VERIFIED_TTL_MS = 60_000;
const VERIFIED_MAX = 10_000;
const MAX_RUNNING = 2;
const MAX_QUEUED = 256;

/** Too many password checks are running or waiting: the caller answers 503. */
export class VerifierBusy extends Error {
  constructor() {
    super('too many password checks in progress');
  }
}

/** Verifies passwords against stored hashes, remembering recent successes (see the top of this file). */
export class PasswordVerifier {
  /** SHA-256(stored hash, password) -> when the success expires. */
  private readonly verified = new Map<string, number>();
  /** Checks running or waiting, by the same key: requests with the same credentials share one. */
  private readonly pending = new Map<string, Promise<boolean>>();
  private running = 0;
  private readonly waiting: Array<() => void> = [];

  constructor(private readonly now: () => number = Date.now) {}

  private cacheKey(stored: StoredPassword, password: string): string {
    return createHash('sha256').update(stored.text).update('\0').update(password).digest('base64');
  }

  /** True when `password` matches. Compared in constant time. Rejects with VerifierBusy when overloaded. */
  verify(stored: StoredPassword, password: string): Promise<boolean> {
    const key = this.cacheKey(stored, password);
    const until = this.verified.get(key);
    if (until !== undefined) {
      if (until > this.now()) return Promise.resolve(true);
      this.verified.delete(key);
    }
    let p = this.pending.get(key);
    if (p === undefined) {
      if (this.running >= MAX_RUNNING && this.waiting.length >= MAX_QUEUED) return Promise.reject(new VerifierBusy());
      p = this.run(stored, password, key).finally(() => this.pending.delete(key));
      this.pending.set(key, p);
    }
    return p;
  }

  private async run(stored: StoredPassword, password: string, key: string): Promise<boolean> {
    if (this.running >= MAX_RUNNING) await new Promise<void>((r) => this.waiting.push(r));
    this.running++;
    try {
      const got = await scryptAsync(password, stored, stored.hash.length);
      const ok = timingSafeEqual(got, stored.hash);
      if (ok) {
        // Bounded: the oldest entry goes first (Map keeps insertion order).
        if (this.verified.size >= VERIFIED_MAX) this.verified.delete(this.verified.keys().next().value!);
        this.verified.set(key, this.now() + VERIFIED_TTL_MS);
      }
      return ok;
    } finally {
      this.running--;
      this.waiting.shift()?.();
    }
  }

  /** Entries held (for tests and the admin view). */
  get size(): number {
    return this.verified.size;
  }
}

/** A stored password nobody has, checked for an unknown user so that the answer takes as long as for a known one. */
export const DECOY_PASSWORD: StoredPassword = parseStoredPassword(
  `scrypt$${2 ** 15}$8$1$${Buffer.alloc(16, 7).toString('base64')}$${Buffer.alloc(32, 9).toString('base64')}`,
);
