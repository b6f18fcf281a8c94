// jwt_auth: a JWT (default `Authorization: Bearer <token>`) verified with
// jose against the consumers' jwt_auth credentials. The filter holds no keys:
// the token's `iss` picks the credential (and so the consumer), whose keys,
// algorithm allow-list and audience then verify it.
//
// - Algorithms: the credential's allow-list (default RS256/PS256/ES256/EdDSA;
//   HS* only with an inline secret, never mixed with public keys). `alg: none`
//   is never accepted: it is in no list, and jwtVerify refuses unsecured JWTs.
// - `aud` is checked only when the credential sets `audience`; `exp` is
//   required; `nbf`/`exp` get `clockToleranceSec` of slack.
// - JWKS URLs go through jose's createRemoteJWKSet and its cache (5 s fetch
//   timeout, 30 s cooldown between refetches on an unknown `kid`, keys kept
//   10 min). The key sets survive config swaps for the same URL.
// - `claimsToHeaders` passes selected claims upstream; client copies of those
//   headers are always removed (they are identity headers).
import type { Logger } from 'pino';
import { createLocalJWKSet, createRemoteJWKSet, decodeJwt, jwtVerify, type JWTPayload, type JWTVerifyGetKey } from 'jose';
import { z } from 'zod';
import { strict } from '../../config/schema.js';
import type { Exchange } from '../../exchange/exchange.js';
import { defineFilter, type FilterResult } from '../types.js';
import { authenticated, commonAuthSettings, unauthorized, type AuthFilter } from './common.js';
import { EMPTY_CONSUMERS, type Consumers, type JwtCredential } from './consumers.js';

export const JWKS_TIMEOUT_MS = 5_000;
export const JWKS_COOLDOWN_MS = 30_000;
export const JWKS_MAX_AGE_MS = 600_000;

const headerName = z
  .string()
  .regex(/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/, 'must be a header name')
  .transform((h) => h.toLowerCase());

export const JwtAuthFilterSchema = strict({
  type: z.literal('jwt_auth'),
  /** The header carrying the token; `authorization` means `Authorization: Bearer <token>`, any other its whole value. */
  header: headerName.default('authorization'),
  /** A query parameter carrying the token (tried after the header). */
  query: z.string().min(1).optional(),
  /** A cookie carrying the token (tried last). */
  cookie: z.string().min(1).optional(),
  /** Slack for exp / nbf / iat, in seconds. */
  clockToleranceSec: z.number().int().min(0).max(600).default(60),
  /** Claims sent upstream as headers (strings as they are, other values as JSON). */
  claimsToHeaders: z.array(strict({ claim: z.string().min(1), header: headerName })).default([]),
  ...commonAuthSettings,
});

type JwtAuthConfig = z.output<typeof JwtAuthFilterSchema>;

/** The key source of each credential; remote sets are shared by URL. */
export class JwtKeys {
  private readonly remote = new Map<string, JWTVerifyGetKey>();
  private readonly local = new Map<JwtCredential, JWTVerifyGetKey | Uint8Array>();

  constructor(previous?: JwtKeys) {
    if (previous) for (const [url, set] of previous.remote) this.remote.set(url, set);
  }

  keyFor(cred: JwtCredential): JWTVerifyGetKey | Uint8Array {
    if (cred.jwksUrl !== undefined) {
      let set = this.remote.get(cred.jwksUrl);
      if (set === undefined) {
        set = createRemoteJWKSet(new URL(cred.jwksUrl), { timeoutDuration: JWKS_TIMEOUT_MS, cooldownDuration: JWKS_COOLDOWN_MS, cacheMaxAge: JWKS_MAX_AGE_MS });
        this.remote.set(cred.jwksUrl, set);
      }
      return set;
    }
    let k = this.local.get(cred);
    if (k === undefined) {
      k = cred.secret !== undefined ? new TextEncoder().encode(cred.secret) : createLocalJWKSet({ keys: cred.keys as never });
      this.local.set(cred, k);
    }
    return k;
  }
}

/** A claim as a header value, or undefined when it cannot be one (absent, or a string with control characters). */
export function claimHeaderValue(v: unknown): string | undefined {
  if (v === undefined || v === null) return undefined;
  const s = typeof v === 'string' ? v : JSON.stringify(v);
  // eslint-disable-next-line no-control-regex
  return /[\u0000-\u001f\u007f]/.test(s) ? undefined : s;
}

/** Verified tokens remembered per filter (a bounded map, oldest first out). */
const VERIFIED_MAX = 10_000;
/** At most this long, and never past the token's exp (plus the clock tolerance). */
const VERIFIED_TTL_MS = 60_000;
/** Longer tokens are verified every time rather than kept. */
const VERIFIED_MAX_TOKEN = 8_192;

interface Verified {
  readonly cred: JwtCredential;
  readonly payload: JWTPayload;
  readonly until: number;
}

export function createJwtAuth(cfg: JwtAuthConfig, consumers: Consumers, keys = new JwtKeys(), log?: Logger): AuthFilter {
  // A token that verified is taken again without its signature check until it
  // expires, for a minute at most: verification (jose, async) is most of this
  // filter's cost, and a client sends the same token for every request. What
  // a minute costs: a key removed from a JWKS still admits tokens verified with
  // it in the last minute (exp and nbf are still honoured).
  const verifiedTokens = new Map<string, Verified>();
  const remember = (token: string, cred: JwtCredential, payload: JWTPayload): void => {
    if (token.length > VERIFIED_MAX_TOKEN || typeof payload.exp !== 'number') return;
    const until = Math.min(Date.now() + VERIFIED_TTL_MS, (payload.exp + cfg.clockToleranceSec) * 1000);
    if (verifiedTokens.size >= VERIFIED_MAX) verifiedTokens.delete(verifiedTokens.keys().next().value!);
    verifiedTokens.set(token, { cred, payload, until });
  };
  const challenge = `Bearer realm="${cfg.realm}"`;
  const invalid = (why: string) => unauthorized(`${challenge}, error="invalid_token", error_description="${why.replace(/["\\\r\n]/g, "'")}"`, `invalid token: ${why}`);
  const bearer = cfg.header === 'authorization';

  const tokenOf = (ex: Exchange): { token: string; from: 'header' | 'query' | 'cookie' } | undefined => {
    const h = ex.header(cfg.header);
    if (h !== undefined) {
      if (!bearer) return { token: h.trim(), from: 'header' };
      if (h.length > 7 && h.slice(0, 7).toLowerCase() === 'bearer ') return { token: h.slice(7).trim(), from: 'header' };
      // Authorization of another scheme (Basic, Signature): another auth kind's credential.
    }
    if (cfg.query !== undefined) {
      const q = ex.query(cfg.query);
      if (q !== undefined) return { token: q, from: 'query' };
    }
    if (cfg.cookie !== undefined) {
      const c = ex.cookie(cfg.cookie);
      if (c !== undefined) return { token: c, from: 'cookie' };
    }
    return undefined;
  };

  const accept = (ex: Exchange, cred: JwtCredential, payload: JWTPayload, from: 'header' | 'query' | 'cookie'): FilterResult => {
    let extra: Record<string, string> | undefined;
    for (const { claim, header } of cfg.claimsToHeaders) {
      const v = claimHeaderValue(payload[claim]);
      if (v !== undefined) (extra ??= {})[header] = v;
    }
    authenticated(ex, cred.consumer, cfg.consumerHeader, extra);
    if (cfg.hideCredentials && from === 'header') ex.requestHeaderOps.push({ remove: [cfg.header] });
    return undefined;
  };

  return {
    type: 'jwt_auth',
    phase: 'auth',
    challenge,
    identityHeaders: [cfg.consumerHeader, ...cfg.claimsToHeaders.map((c) => c.header)],
    onRequest(ex: Exchange): FilterResult | Promise<FilterResult> {
      if (ex.consumer !== undefined) return undefined;
      const found = tokenOf(ex);
      if (found === undefined) return undefined;
      const known = verifiedTokens.get(found.token);
      if (known !== undefined) {
        if (Date.now() < known.until) return accept(ex, known.cred, known.payload, found.from);
        verifiedTokens.delete(found.token);
      }
      let iss: unknown;
      try {
        iss = decodeJwt(found.token).iss;
      } catch {
        return invalid('malformed token');
      }
      const cred = typeof iss === 'string' ? consumers.jwtByIssuer.get(iss) : undefined;
      if (cred === undefined) return invalid('unknown issuer');
      const key = keys.keyFor(cred);
      const opts = {
        algorithms: cred.algorithms as string[],
        issuer: cred.issuer,
        audience: cred.audience,
        clockTolerance: cfg.clockToleranceSec,
        requiredClaims: ['exp'],
      };
      const verified = key instanceof Uint8Array ? jwtVerify(found.token, key, opts) : jwtVerify(found.token, key, opts);
      return verified.then(
        (r) => {
          remember(found.token, cred, r.payload);
          return accept(ex, cred, r.payload, found.from);
        },
        (e: Error & { code?: string }) => {
          // A key set that could not be fetched is the gateway's problem to see, not only the client's.
          if (e.code === 'ERR_JWKS_TIMEOUT' || (e.code === undefined && cred.jwksUrl !== undefined)) {
            log?.warn({ issuer: cred.issuer, jwksUrl: cred.jwksUrl, err: e.message }, 'jwt_auth: JWKS unavailable');
            return invalid('signing keys unavailable');
          }
          return invalid(e.code === 'ERR_JWT_EXPIRED' ? 'token expired' : e.code === 'ERR_JOSE_ALG_NOT_ALLOWED' ? 'algorithm not allowed' : e.code === 'ERR_JWT_CLAIM_VALIDATION_FAILED' ? `claim check failed (${(e as { claim?: string }).claim ?? '?'})` : 'signature or key mismatch');
        },
      );
    },
    describe: () => ({ header: cfg.header, query: cfg.query, cookie: cfg.cookie, issuers: [...consumers.jwtByIssuer.keys()], claimsToHeaders: cfg.claimsToHeaders }),
  };
}

export const jwtAuthFilter = defineFilter({
  type: 'jwt_auth',
  schema: JwtAuthFilterSchema,
  create: (config, ctx) => {
    const prev = ctx.previous as (AuthFilter & { keys?: JwtKeys }) | undefined;
    const keys = new JwtKeys(prev?.keys);
    return Object.assign(createJwtAuth(config, ctx.consumers ?? EMPTY_CONSUMERS, keys, ctx.log), { keys });
  },
});
