// Consumers: named clients and the credentials they own (top-level
// `consumers:`). Each credential's keys are checked here by its type when the
// config compiles (as filter entries are by their kinds), with the key path
// named: consumers[1].credentials[0].password: ...
//
// The auth filters (key_auth, basic_auth, jwt_auth, hmac_auth) look a
// presented credential up in the indexes built here (what they share beyond
// that is in common.ts).
import { createHash } from 'node:crypto';
import { z } from 'zod';
import { strict } from '../../config/schema.js';
import { parseStoredPassword, type StoredPassword } from './password.js';

/** Higress' consumer header: the authenticated consumer's name, sent upstream. */
export const DEFAULT_CONSUMER_HEADER = 'x-mse-consumer';
export const AUTH_TYPES = ['key_auth', 'basic_auth', 'jwt_auth', 'hmac_auth'] as const;
export type AuthType = (typeof AUTH_TYPES)[number];

export const ASYMMETRIC_ALGS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA'] as const;
export const HMAC_ALGS = ['HS256', 'HS384', 'HS512'] as const;
/** Without `algorithms`: what a credential with keys or a JWKS URL accepts. */
export const DEFAULT_ASYMMETRIC = ['RS256', 'PS256', 'ES256', 'EdDSA'];

const KeyAuthCredential = strict({ type: z.literal('key_auth'), key: z.string().min(8, 'an API key needs at least 8 characters') });
const BasicAuthCredential = strict({
  type: z.literal('basic_auth'),
  username: z.string().min(1).refine((u) => !u.includes(':'), 'a Basic username cannot contain ":"'),
  /** scrypt$N$r$p$salt$hash (meshgate hash-password) */
  password: z.string().min(1),
});
const JwtAuthCredential = strict({
  type: z.literal('jwt_auth'),
  /** The token's `iss`: picks this consumer. */
  issuer: z.string().min(1),
  jwksUrl: z.url({ protocol: /^https?$/ }).optional(),
  /** Public keys as JWKs (inline JWKS). */
  keys: z.array(z.looseObject({ kty: z.string() })).min(1).optional(),
  /** A shared secret, for HS256/384/512 only. */
  secret: z.string().min(32, 'an HMAC secret needs at least 32 characters').optional(),
  /** Checked only when set (the token's `aud` must contain one of them). */
  audience: z.union([z.string().min(1), z.array(z.string().min(1)).min(1)]).optional(),
  algorithms: z.array(z.enum([...ASYMMETRIC_ALGS, ...HMAC_ALGS])).min(1).optional(),
});
const HmacAuthCredential = strict({
  type: z.literal('hmac_auth'),
  keyId: z.string().min(1),
  secret: z.string().min(16, 'an HMAC secret needs at least 16 characters'),
});

export const CredentialSchema = z.discriminatedUnion('type', [KeyAuthCredential, BasicAuthCredential, JwtAuthCredential, HmacAuthCredential]);

export interface JwtCredential {
  readonly consumer: string;
  readonly issuer: string;
  readonly jwksUrl: string | undefined;
  readonly keys: readonly Record<string, unknown>[] | undefined;
  readonly secret: string | undefined;
  readonly audience: string | string[] | undefined;
  readonly algorithms: readonly string[];
}

export interface Consumers {
  readonly names: ReadonlySet<string>;
  /** SHA-256 of a key -> consumer (the digest, not the key, is what a lookup compares). */
  readonly keys: ReadonlyMap<string, { consumer: string; digest: Buffer }>;
  readonly basic: ReadonlyMap<string, { consumer: string; password: StoredPassword }>;
  readonly jwtByIssuer: ReadonlyMap<string, JwtCredential>;
  readonly hmac: ReadonlyMap<string, { consumer: string; secret: Buffer }>;
}

export const EMPTY_CONSUMERS: Consumers = { names: new Set(), keys: new Map(), basic: new Map(), jwtByIssuer: new Map(), hmac: new Map() };

export function sha256(v: string | Buffer): Buffer {
  return createHash('sha256').update(v).digest();
}

function keyPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const k of path) out += typeof k === 'number' ? `[${k}]` : `.${String(k)}`;
  return out;
}

/** Compiles `consumers:`; throws naming the key (consumers[i].credentials[j].x) on a bad entry or a duplicate. */
export function compileConsumers(list: ReadonlyArray<{ name: string; credentials: ReadonlyArray<{ type: string; [k: string]: unknown }> }>): Consumers {
  const names = new Set<string>();
  const keys = new Map<string, { consumer: string; digest: Buffer }>();
  const basic = new Map<string, { consumer: string; password: StoredPassword }>();
  const jwtByIssuer = new Map<string, JwtCredential>();
  const hmac = new Map<string, { consumer: string; secret: Buffer }>();
  list.forEach((c, i) => {
    if (names.has(c.name)) throw new Error(`consumers[${i}].name: consumer "${c.name}" is declared twice`);
    names.add(c.name);
    c.credentials.forEach((raw, j) => {
      const where = `consumers[${i}].credentials[${j}]`;
      const parsed = CredentialSchema.safeParse(raw);
      if (!parsed.success) {
        const issue = parsed.error.issues[0]!;
        throw new Error(`${where}${keyPath(issue.path)}: ${issue.message}`);
      }
      const cred = parsed.data;
      switch (cred.type) {
        case 'key_auth': {
          const digest = sha256(cred.key);
          const id = digest.toString('base64');
          if (keys.has(id)) throw new Error(`${where}.key: the same key is given to consumers "${keys.get(id)!.consumer}" and "${c.name}"`);
          keys.set(id, { consumer: c.name, digest });
          break;
        }
        case 'basic_auth': {
          if (basic.has(cred.username)) throw new Error(`${where}.username: "${cred.username}" is used by consumer "${basic.get(cred.username)!.consumer}" too`);
          let password: StoredPassword;
          try {
            password = parseStoredPassword(cred.password);
          } catch (e) {
            throw new Error(`${where}.password: ${(e as Error).message}`);
          }
          basic.set(cred.username, { consumer: c.name, password });
          break;
        }
        case 'jwt_auth': {
          const sources = [cred.jwksUrl, cred.keys, cred.secret].filter((v) => v !== undefined).length;
          if (sources !== 1) throw new Error(`${where}: give exactly one of jwksUrl, keys, secret`);
          const algorithms = cred.algorithms ?? (cred.secret !== undefined ? ['HS256'] : DEFAULT_ASYMMETRIC);
          // A shared secret and a public key must never verify the same token (algorithm confusion).
          const hs = algorithms.filter((a) => a.startsWith('HS'));
          if (cred.secret === undefined && hs.length > 0) throw new Error(`${where}.algorithms: ${hs.join(', ')} need an inline secret`);
          if (cred.secret !== undefined && hs.length !== algorithms.length) throw new Error(`${where}.algorithms: a secret verifies HS256/HS384/HS512 only`);
          // Inline keys verify: a private or symmetric JWK here is a secret pasted in the wrong place.
          const bad = cred.keys?.findIndex((k) => 'd' in k || k.kty === 'oct') ?? -1;
          if (bad >= 0) throw new Error(`${where}.keys[${bad}]: give public keys only (no "d"; a shared secret goes in secret)`);
          if (jwtByIssuer.has(cred.issuer)) throw new Error(`${where}.issuer: "${cred.issuer}" already picks consumer "${jwtByIssuer.get(cred.issuer)!.consumer}"`);
          jwtByIssuer.set(cred.issuer, {
            consumer: c.name,
            issuer: cred.issuer,
            jwksUrl: cred.jwksUrl,
            keys: cred.keys,
            secret: cred.secret,
            audience: cred.audience,
            algorithms,
          });
          break;
        }
        case 'hmac_auth':
          if (hmac.has(cred.keyId)) throw new Error(`${where}.keyId: "${cred.keyId}" is used by consumer "${hmac.get(cred.keyId)!.consumer}" too`);
          hmac.set(cred.keyId, { consumer: c.name, secret: Buffer.from(cred.secret, 'utf8') });
          break;
      }
    });
  });
  return { names, keys, basic, jwtByIssuer, hmac };
}
