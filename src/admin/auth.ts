// Admin API protection (admin.auth, admin.readOnly).
//
// - /healthz and /readyz are always open (kubelet probes carry no credentials);
//   admin.auth.openPaths adds paths served to anyone for reading (e.g. /metrics).
// - With admin.auth, every other request needs `Authorization: Bearer <token>`
//   (a named token) or Basic credentials of a named user (password stored as
//   a scrypt hash). Role `read` may only read (GET); role `admin` may change
//   things (POST /api/reload). Tokens are compared in constant time.
// - admin.readOnly refuses every change, whoever asks.
// - Every change is logged with the name of who made it.
import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { AdminConfig } from '../config/schema.js';
import { parseBasic } from '../filters/auth/basic-auth.js';
import { DECOY_PASSWORD, parseStoredPassword, PasswordVerifier, type StoredPassword } from '../filters/auth/password.js';

export const ALWAYS_OPEN = new Set(['/healthz', '/readyz']);
/** POSTs that change nothing (the console's draft check and diff): the read role may send them, even with admin.readOnly. */
const READING_POSTS = new Set(['/api/config/validate', '/api/config/diff']);
const REALM = 'meshgate-admin';

export type Role = 'admin' | 'read';
/** Who is asking: a token's or user's name, or undefined when the admin API asks for no credentials. */
export interface Principal {
  readonly name: string | undefined;
  readonly role: Role;
}

export type Decision = { ok: true; principal: Principal } | { ok: false; status: 401 | 403; error: string; headers?: Record<string, string> };

const digest = (s: string): Buffer => createHash('sha256').update(s).digest();

export class AdminGuard {
  private readonly tokens: Array<{ name: string; digest: Buffer; role: Role }>;
  private readonly basic: Map<string, { name: string; password: StoredPassword; role: Role }>;
  private readonly open: ReadonlySet<string>;
  private readonly challenge: string;
  readonly enabled: boolean;
  readonly readOnly: boolean;

  constructor(
    cfg: AdminConfig,
    private readonly verifier = new PasswordVerifier(),
  ) {
    const auth = cfg.auth;
    this.enabled = auth !== undefined;
    this.readOnly = cfg.readOnly === true;
    this.tokens = (auth?.tokens ?? []).map((t) => ({ name: t.name, digest: digest(t.token), role: t.role }));
    this.basic = new Map();
    (auth?.basic ?? []).forEach((u, i) => {
      try {
        this.basic.set(u.name, { name: u.name, password: parseStoredPassword(u.password), role: u.role });
      } catch (e) {
        throw new Error(`admin.auth.basic[${i}].password: ${(e as Error).message}`);
      }
    });
    this.open = new Set(auth?.openPaths ?? []);
    this.challenge = [`Bearer realm="${REALM}"`, ...(this.basic.size ? [`Basic realm="${REALM}", charset="UTF-8"`] : [])].join(', ');
  }

  /** The token's entry; every configured token is compared, in constant time, whatever matches. */
  private token(given: string): { name: string; role: Role } | undefined {
    const d = digest(given);
    let hit: { name: string; role: Role } | undefined;
    for (const t of this.tokens) if (timingSafeEqual(t.digest, d) && hit === undefined) hit = t;
    return hit;
  }

  private denied(error: string): Decision {
    return { ok: false, status: 401, error, headers: { 'www-authenticate': this.challenge } };
  }

  /** Decides a request; a Promise only for Basic credentials (scrypt runs on the thread pool). */
  check(req: IncomingMessage, path: string): Decision | Promise<Decision> {
    const write = req.method !== 'GET' && req.method !== 'HEAD' && !(req.method === 'POST' && READING_POSTS.has(path));
    if (ALWAYS_OPEN.has(path)) return { ok: true, principal: { name: undefined, role: 'read' } };
    const decide = (p: Principal): Decision => {
      if (write && this.readOnly) return { ok: false, status: 403, error: 'the admin API is read-only (admin.readOnly)' };
      if (write && p.role !== 'admin') return { ok: false, status: 403, error: `${p.name ?? 'this client'} may only read (role read)` };
      return { ok: true, principal: p };
    };
    if (!this.enabled) return decide({ name: undefined, role: 'admin' });
    if (!write && this.open.has(path)) return decide({ name: undefined, role: 'read' });
    const h = req.headers.authorization ?? '';
    const sp = h.indexOf(' ');
    const scheme = sp < 0 ? h.toLowerCase() : h.slice(0, sp).toLowerCase();
    const param = sp < 0 ? '' : h.slice(sp + 1).trim();
    if (scheme === 'bearer' && param) {
      const t = this.token(param);
      return t ? decide(t) : this.denied('invalid admin token');
    }
    if (scheme === 'basic' && param && this.basic.size > 0) {
      const creds = parseBasic(param);
      if (!creds) return this.denied('malformed Basic credentials');
      const user = this.basic.get(creds.user);
      return this.verifier.verify(user?.password ?? DECOY_PASSWORD, creds.password).then(
        (ok) => (ok && user ? decide(user) : this.denied('invalid username or password')),
        // Overloaded with password checks: refuse rather than wait.
        () => this.denied('too many password checks in progress, try again'),
      );
    }
    return this.denied('admin credentials required');
  }
}

const guards = new WeakMap<AdminConfig, AdminGuard>();
let verifier: PasswordVerifier | undefined;

/** The guard of an admin config (built once per config generation; verified passwords carry over). */
export function adminGuard(cfg: AdminConfig): AdminGuard {
  let g = guards.get(cfg);
  if (g === undefined) {
    verifier ??= new PasswordVerifier();
    g = new AdminGuard(cfg, verifier);
    guards.set(cfg, g);
  }
  return g;
}
