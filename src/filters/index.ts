// Compiles filter chains from config entries through the filter kinds in catalog.ts.
import type { FilterConfig } from '../config/schema.js';
import { FILTERS } from './catalog.js';
import { PHASES, type FilterCompileContext, type FilterInstance, type FilterPlugin } from './types.js';

const byType = new Map<string, FilterPlugin>(FILTERS.map((p) => [p.type, p]));

/** A zod issue path as a config key path: rules[0].count */
function keyPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const k of path) out += typeof k === 'number' ? `[${k}]` : `.${String(k)}`;
  return out;
}

/** Build a chain, ordered by phase (stable within a phase). Throws naming the filter on a bad config. */
export function compileFilters(
  configs: readonly FilterConfig[],
  ctx: Omit<FilterCompileContext, 'previous'>,
  where: string,
  previous: ReadonlyMap<string, FilterInstance>,
): { chain: FilterInstance[]; byKey: Map<string, FilterInstance> } {
  const made: Array<{ f: FilterInstance; i: number }> = [];
  const byKey = new Map<string, FilterInstance>();
  configs.forEach((cfg, i) => {
    const plugin = byType.get(cfg.type);
    if (!plugin) throw new Error(`${where}[${i}].type: unknown filter "${cfg.type}" (known: ${[...byType.keys()].join(', ')})`);
    const parsed = plugin.schema.safeParse(cfg);
    if (!parsed.success) {
      const issue = parsed.error.issues[0]!;
      throw new Error(`${where}[${i}]${keyPath(issue.path)}: ${issue.message}`);
    }
    const key = `${where}[${i}]:${cfg.type}:${JSON.stringify(cfg)}`;
    try {
      const out = plugin.create(parsed.data, { ...ctx, previous: previous.get(key) });
      const list = Array.isArray(out) ? out : [out];
      byKey.set(key, list[0]!);
      for (const f of list) made.push({ f, i });
    } catch (e) {
      throw new Error(`${where}[${i}]: ${(e as Error).message}`);
    }
  });
  made.sort((a, b) => PHASES.indexOf(a.f.phase) - PHASES.indexOf(b.f.phase) || a.i - b.i);
  return { chain: made.map((m) => m.f), byKey };
}
