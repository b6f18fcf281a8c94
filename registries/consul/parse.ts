// Pure translation of Consul API payloads into gateway endpoints. Anything
// that does not have the documented shape throws, so the watcher treats it as
// an error (keep the last known endpoints) instead of as "no instances".
import type { Endpoint } from '../../src/discovery/types.js';

export class ConsulPayloadError extends Error {}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * GET /v1/catalog/services -> {"svc": ["tag", ...]}. Returns the services that
 * carry every tag in `tags` (the listing's tags are the union over instances).
 * The built-in `consul` service (server RPC port, not HTTP) is left out.
 */
export function parseCatalog(data: unknown, tags: readonly string[] = []): Map<string, string[]> {
  if (!isRecord(data)) throw new ConsulPayloadError('catalog/services: expected an object of service -> tags');
  const out = new Map<string, string[]>();
  for (const [name, svcTags] of Object.entries(data)) {
    if (!Array.isArray(svcTags) || svcTags.some((t) => typeof t !== 'string')) {
      throw new ConsulPayloadError(`catalog/services: tags of "${name}" are not a list of strings`);
    }
    if (!name || name === 'consul') continue;
    if (!hasAllTags(svcTags as string[], tags)) continue;
    out.set(name, svcTags as string[]);
  }
  return out;
}

function hasAllTags(have: readonly string[], want: readonly string[]): boolean {
  for (const t of want) if (!have.includes(t)) return false;
  return true;
}

function str(v: unknown): string {
  return typeof v === 'string' ? v : '';
}

function weightOf(weights: unknown): number {
  if (!isRecord(weights)) return 1; // agents older than 1.2.3 send no Weights: Consul's default is 1
  const w = Number(weights.Passing);
  return Number.isFinite(w) && w >= 0 ? w : 1;
}

/**
 * GET /v1/health/service/<svc>?passing -> [{Node, Service, Checks}]. Returns
 * the instances whose checks all pass and that carry every tag in `tags`
 * (the server filters too; this guards against servers that ignore a filter).
 */
export function parseHealth(data: unknown, tags: readonly string[] = []): Endpoint[] {
  if (!Array.isArray(data)) throw new ConsulPayloadError('health/service: expected a list');
  const out: Endpoint[] = [];
  for (const entry of data) {
    if (!isRecord(entry) || !isRecord(entry.Service) || !isRecord(entry.Node)) {
      throw new ConsulPayloadError('health/service: entry without Node and Service');
    }
    const svc = entry.Service;
    const node = entry.Node;
    const svcTags = Array.isArray(svc.Tags) ? svc.Tags.filter((t): t is string => typeof t === 'string') : [];
    if (!hasAllTags(svcTags, tags)) continue;
    if (Array.isArray(entry.Checks) && entry.Checks.some((c) => isRecord(c) && c.Status !== 'passing')) continue;
    // An empty Service.Address means "the node's address" (Consul's own rule).
    const host = str(svc.Address) || str(node.Address);
    const port = Number(svc.Port);
    if (!host || !Number.isInteger(port) || port <= 0 || port > 65535) continue;
    out.push({ host, port, weight: weightOf(svc.Weights), healthy: true, metadata: metadataOf(svc, node, svcTags) });
  }
  return out;
}

/**
 * Service Meta verbatim; `tags` as a comma-joined list; tags shaped key=value
 * (a common Consul convention, e.g. version=v2) as metadata keys, so route
 * subsets can select on them. Meta wins over a tag with the same key.
 */
function metadataOf(svc: Record<string, unknown>, node: Record<string, unknown>, tags: string[]): Record<string, string> {
  const md: Record<string, string> = {};
  for (const t of tags) {
    const eq = t.indexOf('=');
    if (eq > 0) md[t.slice(0, eq)] = t.slice(eq + 1);
  }
  if (tags.length) md.tags = tags.join(',');
  if (isRecord(svc.Meta)) for (const [k, v] of Object.entries(svc.Meta)) if (v !== null && v !== undefined) md[k] = String(v);
  const nodeName = str(node.Node);
  if (nodeName && md['consul.node'] === undefined) md['consul.node'] = nodeName;
  const id = str(svc.ID);
  if (id && md['consul.id'] === undefined) md['consul.id'] = id;
  return md;
}
