// What the auth filters share: the AuthFilter shape (gate.ts reads it), the
// settings every kind takes, the 401 answer and the identity header upstream.
import { z } from 'zod';
import type { Exchange } from '../../exchange/exchange.js';
import type { FilterInstance, Rejection } from '../types.js';
import { AUTH_TYPES, DEFAULT_CONSUMER_HEADER, type AuthType } from './consumers.js';

/** An auth filter instance: the gate (gate.ts) reads its challenge and the runtime its identity headers. */
export interface AuthFilter extends FilterInstance {
  readonly type: AuthType;
  readonly phase: 'auth';
  /** The WWW-Authenticate challenge of a request that brought no credential of this kind. */
  readonly challenge: string;
  /** Headers only the gateway sets upstream (the consumer header, claim headers): client copies are always removed. */
  readonly identityHeaders: readonly string[];
}

export function isAuthFilter(f: FilterInstance): f is AuthFilter {
  return (AUTH_TYPES as readonly string[]).includes(f.type) && Array.isArray((f as AuthFilter).identityHeaders);
}

/** Filter settings every auth kind takes. */
export const commonAuthSettings = {
  /** The header that carries the authenticated consumer's name upstream. */
  consumerHeader: z
    .string()
    .regex(/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/, 'must be a header name')
    .transform((h) => h.toLowerCase())
    .default(DEFAULT_CONSUMER_HEADER),
  /** Remove the credential before the request goes upstream. */
  hideCredentials: z.boolean().default(false),
  /** The realm named in WWW-Authenticate. */
  realm: z.string().regex(/^[^"\\\r\n]*$/, 'no quotes, backslashes or line breaks').default('meshgate'),
};

/** 401, flag UA, with the challenge. The message never carries the credential. */
export function unauthorized(challenge: string, message: string): Rejection {
  return { status: 401, flag: 'UA', message, headers: { 'www-authenticate': challenge } };
}

/** A consumer was authenticated: remember it and tell the upstream. */
export function authenticated(ex: Exchange, consumer: string, consumerHeader: string, extra?: Record<string, string>): void {
  ex.consumer = consumer;
  ex.requestHeaderOps.push({ set: extra ? { ...extra, [consumerHeader]: consumer } : { [consumerHeader]: consumer } });
}

/** The Authorization header's credentials for `scheme` (case-insensitive), or undefined. */
export function authorizationParam(ex: Exchange, scheme: string): string | undefined {
  const v = ex.header('authorization');
  if (v === undefined || v.length <= scheme.length || v.charCodeAt(scheme.length) !== 32) return undefined;
  if (v.slice(0, scheme.length).toLowerCase() !== scheme.toLowerCase()) return undefined;
  return v.slice(scheme.length + 1).trim();
}
