// Upstream TLS: the settings a connection to an instance uses when the
// service's policy has a `tls:` block, or the instance says it wants TLS
// (registry metadata `secure: "true"`: Eureka's secure port, Spring Cloud's
// `secure` metadata on Nacos, Consul and ZooKeeper).
//
// A policy's files are read and its secure context made once per config
// generation (prepareServiceTls, when a config compiles: an unreadable file
// or a key that does not fit refuses the config, naming the key). Each set of
// settings has an id: pools are keyed by instance and id, so a reload that
// changes a certificate opens new connections with it while the old ones
// finish what they carry.
//
// Verification is on unless the policy says `verify: false`: the chain must
// lead to `ca` (or Node's bundled roots) and the certificate must name `sni`,
// or the instance's host (a DNS name, or an IP address matched against the
// certificate's IP entries). SNI is sent for DNS names only.
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { createSecureContext, type SecureContext } from 'node:tls';
import type { ServiceConfig } from '../config/schema.js';
import type { Instance } from './instance.js';

export type UpstreamTlsConfig = NonNullable<ServiceConfig['tls']>;

export interface UpstreamTls {
  /** Tells sets of settings apart (connection pools are keyed by it). */
  readonly id: number;
  readonly context: SecureContext;
  /** The policy's `sni`, if any. */
  readonly sni: string | undefined;
  readonly verify: boolean;
}

const compiled = new WeakMap<UpstreamTlsConfig, UpstreamTls>();
let nextId = 1;
let systemTls: UpstreamTls | undefined;

function readPem(key: string, file: string | undefined): string | undefined {
  if (file === undefined) return undefined;
  try {
    return readFileSync(file, 'utf8');
  } catch (e) {
    throw new Error(`${key}: cannot read ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
}

/** Reads a policy's files and makes its secure context; throws naming the key (`keyPath` is the policy's own path, e.g. `services["a"].tls`). */
export function compileUpstreamTls(cfg: UpstreamTlsConfig, keyPath: string): UpstreamTls {
  const ca = readPem(`${keyPath}.ca`, cfg.ca);
  const cert = readPem(`${keyPath}.cert`, cfg.cert);
  const key = readPem(`${keyPath}.key`, cfg.key);
  let context: SecureContext;
  try {
    context = createSecureContext({ ca, cert, key });
  } catch (e) {
    const msg = (e as Error).message;
    // OpenSSL says which part it could not use.
    const which = /key/i.test(msg) && key !== undefined ? 'key' : /ca|certificate authority/i.test(msg) && ca !== undefined ? 'ca' : 'cert';
    throw new Error(`${keyPath}.${which}: ${msg}`);
  }
  return { id: nextId++, context, sni: cfg.sni, verify: cfg.verify };
}

/**
 * Compiles the TLS of every service policy that has one (a config being
 * compiled); throws naming the first bad key. `warn` hears about policies
 * that turn verification off.
 */
export function prepareServiceTls(services: Readonly<Record<string, ServiceConfig>>, warn?: (service: string) => void): void {
  for (const [name, s] of Object.entries(services)) {
    if (s.tls === undefined || compiled.has(s.tls)) continue;
    compiled.set(s.tls, compileUpstreamTls(s.tls, `services[${JSON.stringify(name)}].tls`));
    if (!s.tls.verify) warn?.(name);
  }
}

/**
 * The TLS a connection to `inst` uses under `policy`, or undefined for plain
 * TCP. Throws only for a policy that prepareServiceTls never saw and whose
 * files cannot be read (the caller reports a failed attempt).
 */
export function upstreamTlsFor(inst: Instance, policy: ServiceConfig): UpstreamTls | undefined {
  const cfg = policy.tls;
  if (cfg !== undefined) {
    let t = compiled.get(cfg);
    if (t === undefined) {
      t = compileUpstreamTls(cfg, 'tls');
      compiled.set(cfg, t);
    }
    return t;
  }
  if (inst.metadata.secure !== 'true') return undefined;
  systemTls ??= { id: 0, context: createSecureContext({}), sni: undefined, verify: true };
  return systemTls;
}

/** upstreamTlsFor for a health probe: null when the policy's files cannot be read (the probe fails). */
export function probeTls(inst: Instance, policy: ServiceConfig | undefined): UpstreamTls | undefined | null {
  if (policy === undefined) return undefined;
  try {
    return upstreamTlsFor(inst, policy);
  } catch {
    return null;
  }
}

/** Connection pools by instance and TLS settings (`host:port` alone for plain TCP). */
export function tlsPoolKey(instId: string, tls: UpstreamTls | undefined): string {
  return tls === undefined ? instId : `${instId}|tls${tls.id}`;
}

/** The instance id a pool key (tlsPoolKey) belongs to. */
function instanceOfPoolKey(key: string): string {
  const bar = key.indexOf('|');
  return bar < 0 ? key : key.slice(0, bar);
}

/**
 * Pools (keyed by tlsPoolKey) that `drop` names, by instance id and key,
 * leave the map and are handed to `close`, which lets their requests in
 * flight finish: those of instances that left, or an instance's pools under
 * TLS settings a reload replaced.
 */
export function closePoolsWhere<P>(pools: Map<string, P>, drop: (instId: string, key: string) => boolean, close: (pool: P) => void): void {
  for (const [key, pool] of pools) {
    if (drop(instanceOfPoolKey(key), key)) {
      pools.delete(key);
      close(pool);
    }
  }
}

/** The SNI to send to `host`: the policy's, or the host when it is a DNS name (never an IP address). */
export function servernameFor(t: UpstreamTls, host: string): string | undefined {
  return t.sni ?? (isIP(host) === 0 ? host : undefined);
}

/** Options for tls.connect / http2.connect / undici's connector. */
export function tlsConnectOptions(t: UpstreamTls, host: string, alpn: string): { secureContext: SecureContext; servername: string | undefined; rejectUnauthorized: boolean; ALPNProtocols: string[] } {
  return { secureContext: t.context, servername: servernameFor(t, host), rejectUnauthorized: t.verify, ALPNProtocols: [alpn] };
}

/**
 * A short, stable description of a failed TLS handshake for logs and
 * answers: `tls: CERT_HAS_EXPIRED (certificate has expired)`. Undefined for
 * errors that are not about TLS.
 */
export function describeTlsError(err: unknown): string | undefined {
  const e = err as (Error & { code?: string; reason?: string }) | undefined;
  if (e === undefined || e === null) return undefined;
  const code = e.code ?? '';
  const tlsish = code.startsWith('ERR_TLS_') || code.startsWith('ERR_SSL_') || /CERT|_SIGNED|UNABLE_TO_|HOSTNAME|ALTNAME/.test(code);
  if (!tlsish) return undefined;
  return `tls: ${code} (${(e.reason ?? e.message).slice(0, 160)})`;
}
