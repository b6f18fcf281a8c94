// Service names no configured registry can give. A backend or a `services:`
// key naming such a service validates as a config, and then every request to
// it answers 503 UH (no instances ever arrive): a typo (`demo.statik`), a
// namespace or group the Nacos registry does not watch, a datacenter the
// Consul registry is not in. Each kind says which names it gives
// (RegistryPlugin.names); a name none accepts is a warning from `validate`
// (an error with --strict) and in the start and reload logs, with the
// closest name the config can give when one is near.
import { registryNames } from '../discovery/registries.js';
import type { ServiceNames } from '../discovery/types.js';
import type { Config } from './schema.js';

/** Every place a config names a service: [key path, name]. */
export function serviceReferences(cfg: Config): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  const walk = (node: unknown, path: string): void => {
    if (Array.isArray(node)) {
      node.forEach((v, i) => walk(v, `${path}[${i}]`));
      return;
    }
    if (node === null || typeof node !== 'object') return;
    for (const [k, v] of Object.entries(node)) {
      // dubbo.service is a Java interface name, not a gateway service.
      if (k === 'dubbo') continue;
      if (k === 'service' && typeof v === 'string') out.push([`${path}.service`, v]);
      else walk(v, `${path}.${k}`);
    }
  };
  cfg.routes.forEach((r, i) => walk(r, `routes[${i}]`));
  for (const [name, svc] of Object.entries(cfg.services)) {
    out.push([`services[${JSON.stringify(name)}]`, name]);
    walk(svc, `services[${JSON.stringify(name)}]`);
  }
  return out;
}

/** Edit distance, capped: enough to find a near name. */
function distance(a: string, b: string, cap: number): number {
  if (Math.abs(a.length - b.length) > cap) return cap + 1;
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    let best = i;
    for (let j = 1; j <= b.length; j++) {
      cur[j] = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
      best = Math.min(best, cur[j]!);
    }
    if (best > cap) return cap + 1;
    prev = cur;
  }
  return prev[b.length]!;
}

/** The suffix after the service part (`.DEFAULT-GROUP.public.nacos` of a Nacos name): what a typo usually breaks. */
function suggest(name: string, registries: ReadonlyArray<ServiceNames>): string | undefined {
  let best: string | undefined;
  let bestD = 3;
  for (const r of registries) {
    for (const exact of r.exact ?? []) {
      const d = distance(name, exact, 2);
      if (d < bestD) [best, bestD] = [exact, d];
    }
    if (r.exact) continue;
    // A pattern `<service>.tail`: keep the service part, try the tail.
    for (const tail of r.pattern.split(' or ').map((p) => p.replace(/^<[^>]*>/, ''))) {
      if (!tail.startsWith('.')) continue;
      const labels = tail.split('.').length - 1;
      const parts = name.split('.');
      if (parts.length <= labels) continue;
      const head = parts.slice(0, parts.length - labels).join('.');
      const candidate = head + tail;
      const d = distance(name, candidate, 2);
      if (d < bestD && r.accepts(candidate)) [best, bestD] = [candidate, d];
    }
  }
  return best;
}

/** One line per service name no configured registry can give, with its key path. */
export function serviceNameWarnings(cfg: Config): string[] {
  const registries = cfg.registries.map((r) => registryNames(r));
  const warnings: string[] = [];
  const said = new Set<string>();
  for (const [path, name] of serviceReferences(cfg)) {
    if (registries.some((r) => r.accepts(name))) continue;
    const key = `${path}\u0000${name}`;
    if (said.has(key)) continue;
    said.add(key);
    const near = suggest(name, registries);
    const given = registries.length === 0 ? 'no registries are configured' : `the registries give ${registries.map((r) => r.pattern).join(', ')}`;
    warnings.push(`${path}: no configured registry gives a service named "${name}" (${given})${near ? `; did you mean "${near}"?` : ''}`);
  }
  return warnings;
}
