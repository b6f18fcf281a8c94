// Turning ZooKeeper nodes into endpoints: Dubbo provider URLs (interface-level
// layout, everything lives in the node name) and Curator service-discovery JSON
// (Dubbo 3 application-level and Spring Cloud ZooKeeper, everything lives in
// the node data). Pure functions: the watcher decides what to do with
// "excluded" (a valid instance that must not get traffic) and "garbage" (a node
// we cannot read, which is logged and skipped, never allowed to empty a service).
import type { Endpoint } from '../../src/discovery/types.js';

export class GarbageNode extends Error {
  override name = 'GarbageNode';
}

export interface DubboProvider {
  /** Gateway service name: providers:<interface>:<version>:<group>.zookeeper */
  service: string;
  /** null: a valid provider that is disabled (enabled=false / disabled=true). */
  endpoint: Endpoint | null;
}

/** The Dubbo service key Higress uses, with empty segments kept: providers:com.foo.Svc::.zookeeper */
export function dubboServiceName(iface: string, version: string, group: string): string {
  return `providers:${iface}:${version}:${group}.zookeeper`;
}

export function curatorServiceName(name: string): string {
  return `${name}.zookeeper`;
}

/** Java's URLEncoder writes a space as '+', which decodeURIComponent leaves alone. */
export function decodeJavaUrlComponent(s: string): string {
  return decodeURIComponent(s.replace(/\+/g, ' '));
}

const URL_RE = /^([A-Za-z][\w+.-]*):\/\/(?:[^@/?#]*@)?(\[[0-9A-Fa-f:.]+\]|[^:/?#]+)(?::(\d+))?(\/[^?#]*)?(?:\?([^#]*))?/;

export interface ParsedUrl {
  protocol: string;
  host: string;
  port: number;
  path: string;
  params: Record<string, string>;
}

/** Parse a decoded Dubbo URL such as dubbo://10.0.0.5:20880/com.foo.Svc?version=1.0.0&weight=100 */
export function parseDubboUrl(url: string): ParsedUrl {
  const m = URL_RE.exec(url);
  if (!m) throw new GarbageNode(`not a URL: ${url.slice(0, 200)}`);
  const port = Number(m[3]);
  if (!Number.isInteger(port) || port <= 0 || port > 65535) throw new GarbageNode(`no valid port in ${url.slice(0, 200)}`);
  let host = m[2]!;
  if (host.startsWith('[')) host = host.slice(1, -1);
  const params: Record<string, string> = {};
  if (m[5]) {
    for (const pair of m[5].split('&')) {
      if (!pair) continue;
      const eq = pair.indexOf('=');
      const k = eq < 0 ? pair : pair.slice(0, eq);
      if (!k) continue;
      params[k] = eq < 0 ? '' : pair.slice(eq + 1);
    }
  }
  return { protocol: m[1]!, host, port, path: (m[4] ?? '').replace(/^\/+/, ''), params };
}

/**
 * One child of /<root>/<interface>/providers. Every URL parameter becomes
 * metadata, plus protocol, weight, interface, version and group.
 */
export function parseDubboProviderNode(nodeName: string): DubboProvider {
  let url: string;
  try {
    url = decodeJavaUrlComponent(nodeName);
  } catch {
    throw new GarbageNode(`undecodable provider node ${nodeName.slice(0, 200)}`);
  }
  const u = parseDubboUrl(url);
  const p = u.params;
  if (p.side && p.side !== 'provider') throw new GarbageNode(`not a provider URL (side=${p.side})`);
  if (p.category && p.category !== 'providers') throw new GarbageNode(`not a provider URL (category=${p.category})`);
  const iface = p.interface || u.path;
  if (!iface) throw new GarbageNode(`provider URL without interface: ${url.slice(0, 200)}`);
  // Dubbo 2.5/2.6 wrote provider-level defaults as default.<key>.
  const version = p.version ?? p['default.version'] ?? '';
  const group = p.group ?? p['default.group'] ?? '';
  const service = dubboServiceName(iface, version, group);
  if (p.enabled === 'false' || p.disabled === 'true') return { service, endpoint: null };
  let weight = Number(p.weight ?? p['default.weight'] ?? 100);
  if (!Number.isFinite(weight) || weight < 0) weight = 100;
  const metadata: Record<string, string> = { ...p, protocol: u.protocol, interface: iface, version, group, weight: String(weight) };
  return { service, endpoint: { host: u.host, port: u.port, weight, healthy: true, metadata } };
}

function str(v: unknown): string {
  return typeof v === 'string' ? v : JSON.stringify(v);
}

/**
 * Curator ServiceInstance JSON (written by Curator's JsonInstanceSerializer):
 * {name, id, address, port, sslPort, payload: {metadata: {...}}, enabled, serviceType, ...}.
 * Returns null for an instance that must not get traffic: enabled=false, or a
 * Spring Cloud instance_status other than UP (empty counts as UP).
 */
export function parseCuratorInstance(data: Buffer | undefined | null, nodeName: string): Endpoint | null {
  if (!data || data.length === 0) throw new GarbageNode(`instance node ${nodeName} has no data`);
  let doc: unknown;
  try {
    doc = JSON.parse(data.toString('utf8'));
  } catch {
    throw new GarbageNode(`instance node ${nodeName} is not JSON`);
  }
  if (!doc || typeof doc !== 'object' || Array.isArray(doc)) throw new GarbageNode(`instance node ${nodeName} is not a JSON object`);
  const o = doc as Record<string, unknown>;
  const host = o.address;
  if (typeof host !== 'string' || !host) throw new GarbageNode(`instance node ${nodeName} has no address`);
  const portRaw = typeof o.port === 'number' ? o.port : o.sslPort;
  const port = typeof portRaw === 'number' ? portRaw : Number(portRaw);
  if (!Number.isInteger(port) || port <= 0 || port > 65535) throw new GarbageNode(`instance node ${nodeName} has no valid port`);
  if (o.enabled === false) return null;

  const payload = o.payload && typeof o.payload === 'object' ? (o.payload as Record<string, unknown>) : undefined;
  const rawMeta = payload?.metadata && typeof payload.metadata === 'object' ? (payload.metadata as Record<string, unknown>) : {};
  const metadata: Record<string, string> = {};
  for (const [k, v] of Object.entries(rawMeta)) if (v !== null && v !== undefined) metadata[k] = str(v);

  const status = metadata.instance_status;
  if (status && status.toUpperCase() !== 'UP') return null;

  if (typeof o.id === 'string') metadata.instanceId ??= o.id;
  if (typeof o.port !== 'number' && typeof o.sslPort === 'number') metadata.secure ??= 'true';

  // Dubbo 3 application-level: the protocols an instance serves are listed in
  // dubbo.endpoints; the one on the registered port is the instance's protocol.
  const isDubbo = 'dubbo.endpoints' in metadata || 'dubbo.metadata.revision' in metadata;
  if (metadata['dubbo.endpoints'] && !metadata.protocol) {
    try {
      const eps = JSON.parse(metadata['dubbo.endpoints']) as Array<{ port?: number; protocol?: string }>;
      if (Array.isArray(eps)) {
        const match = eps.find((e) => e && e.port === port) ?? eps[0];
        if (match && typeof match.protocol === 'string') metadata.protocol = match.protocol;
      }
    } catch {
      // an unreadable dubbo.endpoints leaves the protocol to the service policy
    }
  }

  let weight = isDubbo ? 100 : 1;
  if (metadata.weight !== undefined) {
    const w = Number(metadata.weight);
    if (Number.isFinite(w) && w >= 0) weight = w;
  }
  return { host, port, weight, healthy: true, metadata };
}

/** Children of a Dubbo interface node that mark it as one (the URL categories). */
export const DUBBO_CATEGORIES = new Set(['providers', 'consumers', 'routers', 'configurators']);

/** Dubbo's own bookkeeping next to interfaces under its root: never services. */
export const DUBBO_RESERVED = new Set(['mapping', 'config', 'metadata']);
