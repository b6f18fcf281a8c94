// Filter registry: config type -> factory, and compilation of filter chains.
import type { FilterConfig } from '../config/schema.js';
import { createHeaders } from './headers.js';
import { createRewrite } from './rewrite.js';
import { createFlowControl } from '../resilience/flow/filter.js';
import { createSystemProtection } from '../resilience/system-protection.js';
import { PHASES, type FilterContext, type FilterInstance } from './types.js';

type Factory = (config: FilterConfig, ctx: FilterContext & { routePrefix?: string }) => FilterInstance;

const factories = new Map<string, Factory>([
  ['rewrite', (c, ctx) => createRewrite(c as Extract<FilterConfig, { type: 'rewrite' }>, ctx.routePrefix)],
  ['headers', (c) => createHeaders(c as Extract<FilterConfig, { type: 'headers' }>)],
  ['flow_control', (c, ctx) => createFlowControl(c as Extract<FilterConfig, { type: 'flow_control' }>, ctx)],
  ['system_protection', (c, ctx) => createSystemProtection(c as Extract<FilterConfig, { type: 'system_protection' }>, ctx)],
]);

/** Filter modules register themselves here (see src/filters/builtin.ts). */
export function registerFilter(type: string, factory: Factory): void {
  factories.set(type, factory);
}

export function hasFilter(type: string): boolean {
  return factories.has(type);
}

/** Build a chain, ordered by phase (stable within a phase). Throws naming the filter on a bad config. */
export function compileFilters(
  configs: readonly FilterConfig[],
  ctx: Omit<FilterContext, 'previous'> & { routePrefix?: string },
  where: string,
  previous: ReadonlyMap<string, FilterInstance>,
): { chain: FilterInstance[]; byKey: Map<string, FilterInstance> } {
  const made: Array<{ f: FilterInstance; i: number }> = [];
  const byKey = new Map<string, FilterInstance>();
  configs.forEach((cfg, i) => {
    const factory = factories.get(cfg.type);
    if (!factory) throw new Error(`${where}[${i}].type: filter "${cfg.type}" is not available in this build`);
    const key = `${where}[${i}]:${cfg.type}:${JSON.stringify(cfg)}`;
    try {
      const f = factory(cfg, { ...ctx, previous: previous.get(key) });
      byKey.set(key, f);
      made.push({ f, i });
    } catch (e) {
      throw new Error(`${where}[${i}]: ${(e as Error).message}`);
    }
  });
  made.sort((a, b) => PHASES.indexOf(a.f.phase) - PHASES.indexOf(b.f.phase) || a.i - b.i);
  return { chain: made.map((m) => m.f), byKey };
}
