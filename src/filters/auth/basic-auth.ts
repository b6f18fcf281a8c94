// basic_auth: RFC 7617 `Authorization: Basic base64(user:password)` against
// the consumers' basic_auth credentials, whose passwords are stored as scrypt
// hashes (password.ts: slow on purpose, checked on the thread pool, recent
// successes remembered briefly). A password is never logged nor put in an
// answer. An unknown user costs the same scrypt run as a wrong password, so
// timing does not tell which usernames exist.
import { z } from 'zod';
import { strict } from '../../config/schema.js';
import type { Exchange } from '../../exchange/exchange.js';
import { defineFilter, type FilterResult } from '../types.js';
import { authenticated, authorizationParam, commonAuthSettings, unauthorized, type AuthFilter } from './common.js';
import { EMPTY_CONSUMERS, type Consumers } from './consumers.js';
import { DECOY_PASSWORD, PasswordVerifier, VerifierBusy } from './password.js';

export const BasicAuthFilterSchema = strict({
  type: z.literal('basic_auth'),
  ...commonAuthSettings,
});

type BasicAuthConfig = z.output<typeof BasicAuthFilterSchema>;

/** user and password of a Basic credential, or undefined when it is not one. */
export function parseBasic(param: string): { user: string; password: string } | undefined {
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(param)) return undefined;
  const text = Buffer.from(param, 'base64').toString('utf8');
  const colon = text.indexOf(':');
  if (colon < 0) return undefined;
  return { user: text.slice(0, colon), password: text.slice(colon + 1) };
}

export function createBasicAuth(cfg: BasicAuthConfig, consumers: Consumers, verifier = new PasswordVerifier()): AuthFilter {
  const challenge = `Basic realm="${cfg.realm}", charset="UTF-8"`;
  return {
    type: 'basic_auth',
    phase: 'auth',
    challenge,
    identityHeaders: [cfg.consumerHeader],
    onRequest(ex: Exchange): FilterResult | Promise<FilterResult> {
      if (ex.consumer !== undefined) return undefined;
      const param = authorizationParam(ex, 'Basic');
      if (param === undefined) return undefined;
      const creds = parseBasic(param);
      if (creds === undefined) return unauthorized(challenge, 'malformed Basic credentials');
      const entry = consumers.basic.get(creds.user);
      return verifier.verify(entry?.password ?? DECOY_PASSWORD, creds.password).then(
        (ok): FilterResult => {
          if (!ok || entry === undefined) return unauthorized(challenge, 'invalid username or password');
          authenticated(ex, entry.consumer, cfg.consumerHeader);
          if (cfg.hideCredentials) ex.requestHeaderOps.push({ remove: ['authorization'] });
          return undefined;
        },
        (e: unknown): FilterResult => {
          if (!(e instanceof VerifierBusy)) throw e;
          return { status: 503, flag: 'SP', message: 'too many password checks in progress', headers: { 'retry-after': '1' } };
        },
      );
    },
    describe: () => ({ realm: cfg.realm, users: consumers.basic.size, verifiedCached: verifier.size }),
  };
}

export const basicAuthFilter = defineFilter({
  type: 'basic_auth',
  schema: BasicAuthFilterSchema,
  create: (config, ctx) => {
    // A config swap keeps what the previous instance verified (same hashes hit, changed ones cannot).
    const prev = ctx.previous as (AuthFilter & { verifier?: PasswordVerifier }) | undefined;
    const verifier = prev?.verifier ?? new PasswordVerifier();
    return Object.assign(createBasicAuth(config, ctx.consumers ?? EMPTY_CONSUMERS, verifier), { verifier });
  },
});
