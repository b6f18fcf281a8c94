// Nacos answers -> endpoints, and Nacos names -> gateway service names. Pure
// functions: nothing here trusts the shape of what the server sent.
import type { Endpoint } from '../../src/discovery/types.js';

/**
 * `<service>.<group>.<namespace>.nacos`, with '_' -> '-' in the group and
 * namespace part (DEFAULT_GROUP -> DEFAULT-GROUP), exactly as Higress names
 * Nacos services; the service name itself is kept as registered.
 */
export function nacosServiceName(service: string, group: string, namespace: string): string {
  return `${service}.${`${group}.${namespace}`.replace(/_/g, '-')}.nacos`;
}

export interface ParsedServiceInfo {
  /** serviceName as the server echoed it (group@@name). */
  name: string;
  clusters: string;
  lastRefTime: number;
  endpoints: Endpoint[];
  /** Host entries that could not be read (skipped). */
  skipped: number;
}

export class BadAnswer extends Error {
  override name = 'BadAnswer';
}

function str(v: unknown): string {
  return typeof v === 'string' ? v : JSON.stringify(v);
}

/**
 * One host of a ServiceInfo. enabled=false stays visible with weight 0 (not
 * routed); healthy=false is passed on as registry health.
 */
export function hostToEndpoint(h: unknown, serviceName: string): Endpoint | undefined {
  if (!h || typeof h !== 'object') return undefined;
  const o = h as Record<string, unknown>;
  const host = o.ip;
  const port = typeof o.port === 'number' ? o.port : Number(o.port);
  if (typeof host !== 'string' || !host || !Number.isInteger(port) || port <= 0 || port > 65535) return undefined;
  let weight = typeof o.weight === 'number' ? o.weight : Number(o.weight ?? 1);
  if (!Number.isFinite(weight) || weight < 0) weight = 1;
  if (o.enabled === false) weight = 0;
  const metadata: Record<string, string> = {};
  if (o.metadata && typeof o.metadata === 'object' && !Array.isArray(o.metadata)) {
    for (const [k, v] of Object.entries(o.metadata as Record<string, unknown>)) if (v !== null && v !== undefined) metadata[k] = str(v);
  }
  // Dubbo providers registered in Nacos: the service name carries interface,
  // version and group; the metadata holds the provider URL parameters.
  if (serviceName.startsWith('providers:')) {
    const [, iface = '', version = '', group = ''] = serviceName.split(':');
    metadata.interface ??= iface;
    metadata.version ??= version;
    metadata.group ??= group;
    metadata.protocol ??= 'dubbo';
  }
  return { host, port, weight, healthy: o.healthy !== false, metadata };
}

/**
 * A ServiceInfo JSON (instance/list answer or the data of a UDP push). A valid
 * answer with no hosts is an empty service; anything malformed is a BadAnswer
 * so the caller keeps the last known endpoints.
 */
export function parseServiceInfo(input: string | unknown): ParsedServiceInfo {
  let doc: unknown = input;
  if (typeof input === 'string') {
    try {
      doc = JSON.parse(input);
    } catch {
      throw new BadAnswer(`not JSON: ${input.slice(0, 120)}`);
    }
  }
  if (!doc || typeof doc !== 'object' || Array.isArray(doc)) throw new BadAnswer('not a JSON object');
  const o = doc as Record<string, unknown>;
  const name = typeof o.name === 'string' ? o.name : typeof o.dom === 'string' ? o.dom : undefined;
  if (!name) throw new BadAnswer('no service name');
  if (!Array.isArray(o.hosts)) throw new BadAnswer(`hosts is not a list in the answer for ${name}`);
  const plain = name.includes('@@') ? name.slice(name.indexOf('@@') + 2) : name;
  const endpoints: Endpoint[] = [];
  let skipped = 0;
  for (const h of o.hosts) {
    const e = hostToEndpoint(h, plain);
    if (e) endpoints.push(e);
    else skipped++;
  }
  // Every host unreadable is not "no instances": it is a broken answer.
  if (endpoints.length === 0 && skipped > 0) throw new BadAnswer(`no readable host in the answer for ${name}`);
  const lastRefTime = typeof o.lastRefTime === 'number' ? o.lastRefTime : 0;
  return { name, clusters: typeof o.clusters === 'string' ? o.clusters : '', lastRefTime, endpoints, skipped };
}

/** {count, doms} of /nacos/v1/ns/service/list. */
export function parseServiceList(input: string): { count: number; doms: string[] } {
  let doc: unknown;
  try {
    doc = JSON.parse(input);
  } catch {
    throw new BadAnswer(`service list is not JSON: ${input.slice(0, 120)}`);
  }
  const o = doc as Record<string, unknown> | null;
  const count = Number(o?.count);
  if (!o || !Number.isInteger(count) || count < 0 || !Array.isArray(o.doms) || !o.doms.every((d) => typeof d === 'string')) {
    throw new BadAnswer('service list has the wrong shape');
  }
  return { count, doms: o.doms as string[] };
}
