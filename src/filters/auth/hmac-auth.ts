// hmac_auth: HTTP signatures in the format of APISIX 3.11's hmac-auth
// (draft-cavage):
//
//   Authorization: Signature keyId="k",algorithm="hmac-sha256",headers="@request-target date",signature="<base64>"
//
// The signing string is the keyId, then one line per listed header in the
// listed order (`@request-target` is `METHOD request-uri`, any other
// `name: value`), each line ending in "\n"; the signature is the base64 HMAC
// of it with the keyId's secret (consumers' hmac_auth credentials). The
// request's `Date` must be within clockSkewSec of the gateway's clock and
// must be among the signed headers (an unsigned Date could be refreshed by
// whoever replays the request).
//
// validateRequestBody: the body's SHA-256 must match `Digest: SHA-256=<base64>`,
// and `digest` must be signed. The body is read ahead of the upstream (at most
// bodyLimit bytes) and handed on unchanged, as the WAF does (exchange/body.ts).
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import { z } from 'zod';
import { positiveInt, strict } from '../../config/schema.js';
import { readBodyPrefix, ReplayBody, wholeBody } from '../../exchange/body.js';
import { requestHasBody, type Exchange } from '../../exchange/exchange.js';
import { defineFilter, type FilterResult } from '../types.js';
import { authenticated, authorizationParam, commonAuthSettings, unauthorized, type AuthFilter } from './common.js';
import { EMPTY_CONSUMERS, type Consumers } from './consumers.js';

const ALGORITHMS = { 'hmac-sha1': 'sha1', 'hmac-sha256': 'sha256', 'hmac-sha512': 'sha512' } as const;
type HmacAlgorithm = keyof typeof ALGORITHMS;

export const HmacAuthFilterSchema = strict({
  type: z.literal('hmac_auth'),
  allowedAlgorithms: z.array(z.enum(['hmac-sha1', 'hmac-sha256', 'hmac-sha512'])).min(1).default(['hmac-sha1', 'hmac-sha256', 'hmac-sha512']),
  /** Largest difference allowed between the request's Date and the gateway's clock, in seconds. */
  clockSkewSec: positiveInt.default(300),
  /** Headers every signature must cover (besides date). */
  signedHeaders: z.array(z.string().min(1).transform((h) => h.toLowerCase())).default([]),
  /** Check the body against `Digest: SHA-256=...`. */
  validateRequestBody: z.boolean().default(false),
  /** The largest body validateRequestBody reads (413 above it). */
  bodyLimit: positiveInt.default(1024 * 1024),
  ...commonAuthSettings,
});

type HmacAuthConfig = z.output<typeof HmacAuthFilterSchema>;

export interface SignatureParams {
  keyId: string;
  algorithm: string;
  headers: string[];
  signature: string;
}

/** The parameters of `Signature k="v",k="v"`; undefined when malformed or one is missing. */
export function parseSignature(param: string): SignatureParams | undefined {
  const out: Record<string, string> = {};
  const re = /\s*([A-Za-z]+)\s*=\s*"([^"]*)"\s*(,|$)/y;
  let i = 0;
  while (i < param.length) {
    re.lastIndex = i;
    const m = re.exec(param);
    if (!m) return undefined;
    const k = m[1]!;
    if (k in out) return undefined; // a repeated parameter: which one was signed?
    out[k] = m[2]!;
    i = re.lastIndex;
  }
  if (!out.keyId || !out.algorithm || !out.signature) return undefined;
  const headers = (out.headers ?? '').split(' ').filter(Boolean).map((h) => h.toLowerCase());
  return { keyId: out.keyId, algorithm: out.algorithm.toLowerCase(), headers, signature: out.signature };
}

/** The string a client signs (see the top of this file); undefined when a listed header is absent. */
export function signingString(p: Pick<SignatureParams, 'keyId' | 'headers'>, method: string, requestUri: string, header: (name: string) => string | undefined): string | undefined {
  let s = `${p.keyId}\n`;
  for (const h of p.headers) {
    if (h === '@request-target') s += `${method} ${requestUri}\n`;
    else {
      const v = header(h);
      if (v === undefined) return undefined;
      s += `${h}: ${v}\n`;
    }
  }
  return s;
}

export function sign(algorithm: HmacAlgorithm, secret: Buffer | string, text: string): string {
  return createHmac(ALGORITHMS[algorithm], secret).update(text).digest('base64');
}

export function createHmacAuth(cfg: HmacAuthConfig, consumers: Consumers, now: () => number = Date.now): AuthFilter {
  const required = new Set(['date', ...cfg.signedHeaders, ...(cfg.validateRequestBody ? ['digest'] : [])]);
  const challenge = `Signature realm="${cfg.realm}", headers="${['@request-target', ...required].join(' ')}"`;
  const allowed = new Set<string>(cfg.allowedAlgorithms);
  const fail = (why: string) => unauthorized(challenge, `signature check failed: ${why}`);

  const headerOf = (ex: Exchange) => (name: string): string | undefined => {
    const v = ex.req.headers[name];
    return Array.isArray(v) ? v.join(', ') : v;
  };

  const checkDigest = (ex: Exchange, digest: string): FilterResult | Promise<FilterResult> => {
    const m = /^SHA-256=([A-Za-z0-9+/]+={0,2})$/i.exec(digest.trim());
    if (!m) return fail('Digest must be SHA-256=<base64>');
    const expected = Buffer.from(m[1]!, 'base64');
    if (!requestHasBody(ex.req)) return digestResult(createHash('sha256').digest(), expected);
    const whole = wholeBody(ex);
    if (whole !== undefined) {
      if (whole.length > cfg.bodyLimit) return tooLarge();
      return digestResult(createHash('sha256').update(whole).digest(), expected);
    }
    const src = ex.body;
    return readBodyPrefix(src, cfg.bodyLimit, ex.cancel).then((prefix): FilterResult => {
      if (prefix.aborted) return { status: 499, flag: 'DC', message: 'client closed the request during the digest check' };
      ex.bodySource = new ReplayBody(prefix, src);
      if (prefix.size > cfg.bodyLimit) return tooLarge();
      const h = createHash('sha256');
      for (const c of prefix.chunks) h.update(c);
      return digestResult(h.digest(), expected);
    });
  };
  const tooLarge = (): FilterResult => ({ status: 413, flag: 'UA', message: `request body larger than hmac_auth verifies (${cfg.bodyLimit} bytes)` });
  const digestResult = (got: Buffer, expected: Buffer): FilterResult => (expected.length === got.length && timingSafeEqual(got, expected) ? undefined : fail('body does not match Digest'));

  return {
    type: 'hmac_auth',
    phase: 'auth',
    challenge,
    identityHeaders: [cfg.consumerHeader],
    onRequest(ex: Exchange): FilterResult | Promise<FilterResult> {
      if (ex.consumer !== undefined) return undefined;
      const param = authorizationParam(ex, 'Signature');
      if (param === undefined) return undefined;
      const p = parseSignature(param);
      if (p === undefined) return fail('malformed Signature parameters');
      if (!allowed.has(p.algorithm)) return fail(`algorithm ${p.algorithm} not allowed`);
      const listed = new Set(p.headers);
      for (const h of required) if (!listed.has(h)) return fail(`header ${h} must be signed`);
      const date = ex.header('date');
      const at = date === undefined ? Number.NaN : Date.parse(date);
      if (!Number.isFinite(at)) return fail('Date missing or malformed');
      if (Math.abs(now() - at) > cfg.clockSkewSec * 1000) return fail('Date outside the allowed clock skew');
      const cred = consumers.hmac.get(p.keyId);
      const text = signingString(p, ex.method, ex.req.url, headerOf(ex));
      if (text === undefined) return fail('a signed header is absent');
      // An unknown keyId is checked against a throwaway secret, so its answer takes as long as a wrong signature's.
      const expected = Buffer.from(sign(p.algorithm as HmacAlgorithm, cred?.secret ?? 'meshgate-unknown-key-id', text), 'base64');
      const given = Buffer.from(p.signature, 'base64');
      const ok = given.length === expected.length && timingSafeEqual(given, expected);
      if (!ok || cred === undefined) return fail('signature mismatch');
      const finish = (): FilterResult => {
        authenticated(ex, cred.consumer, cfg.consumerHeader);
        if (cfg.hideCredentials) ex.requestHeaderOps.push({ remove: ['authorization'] });
        return undefined;
      };
      if (!cfg.validateRequestBody) return finish();
      const d = checkDigest(ex, ex.header('digest')!);
      if (d instanceof Promise) return d.then((r) => r ?? finish());
      return d ?? finish();
    },
    describe: () => ({ allowedAlgorithms: cfg.allowedAlgorithms, clockSkewSec: cfg.clockSkewSec, required: [...required], validateRequestBody: cfg.validateRequestBody, keyIds: consumers.hmac.size }),
  };
}

export const hmacAuthFilter = defineFilter({
  type: 'hmac_auth',
  schema: HmacAuthFilterSchema,
  create: (config, ctx) => createHmacAuth(config, ctx.consumers ?? EMPTY_CONSUMERS),
});
