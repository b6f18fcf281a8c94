// The dependency rule (docs/architecture.md, "Floors"): a file imports only its
// own floor or lower ones, registry adapters import only discovery and the
// bottom floor, and no group of files imports itself round a cycle. A change
// that breaks the rule fails here with the offending import named.
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { dirname, join, normalize, relative } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

const ROOT = normalize(join(dirname(fileURLToPath(import.meta.url)), '..', '..'));

/** Floors, bottom first. The first path segment under src/ (or the top-level file) names the unit. */
export const FLOORS: ReadonlyArray<readonly string[]> = [
  ['exchange', 'observability'],
  ['config', 'discovery', 'http1', 'store'],
  ['routing', 'balancing', 'resilience', 'filters'],
  ['upstreams'],
  ['server', 'admin'],
  ['gateway.ts', 'workers.ts', 'cli.ts'],
];
/** Registry adapters (registries/<kind>/) sit beside discovery and may import only these. */
const REGISTRIES_MAY_IMPORT = new Set(['discovery', 'exchange', 'observability']);

interface Edge {
  from: string;
  to: string;
  line: number;
}

function listTs(dir: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync(join(ROOT, dir), { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...listTs(p));
    else if (e.name.endsWith('.ts')) out.push(p);
  }
  return out;
}

const IMPORT_RE = /(?:^|\n)\s*(?:import|export)\b[^'";]*?\bfrom\s*['"](\.{1,2}\/[^'"]+)['"]|\bimport\(\s*['"](\.{1,2}\/[^'"]+)['"]\s*\)/g;

export function edgesOf(file: string, text: string): Edge[] {
  const out: Edge[] = [];
  for (const m of text.matchAll(IMPORT_RE)) {
    const spec = m[1] ?? m[2]!;
    const to = normalize(join(dirname(file), spec)).replace(/\.js$/, '.ts');
    const line = text.slice(0, m.index).split('\n').length + (m[0].startsWith('\n') ? 1 : 0);
    out.push({ from: file, to, line });
  }
  return out;
}

/** 'src/routing/x.ts' -> 'routing'; 'src/gateway.ts' -> 'gateway.ts'; 'registries/nacos/x.ts' -> 'registries'. */
export function unitOf(file: string): string {
  const parts = file.split(/[\\/]/);
  if (parts[0] === 'registries') return 'registries';
  return parts[1]!;
}

export function floorOf(unit: string): number {
  const i = FLOORS.findIndex((f) => f.includes(unit));
  return i;
}

/** Upward imports and registry imports outside what registries may use. */
export function violations(edges: readonly Edge[]): string[] {
  const bad: string[] = [];
  for (const e of edges) {
    const from = unitOf(e.from);
    const to = unitOf(e.to);
    if (from === to) continue;
    if (from === 'registries') {
      if (!REGISTRIES_MAY_IMPORT.has(to)) bad.push(`${e.from}:${e.line} imports ${e.to} (registries may import only ${[...REGISTRIES_MAY_IMPORT].join(', ')})`);
      continue;
    }
    const ff = floorOf(from);
    if (ff < 0) {
      bad.push(`${e.from}: ${from} has no floor (add it to FLOORS and docs/architecture.md)`);
      continue;
    }
    if (to === 'registries') {
      // Only the plug-in list may be imported, and only from the config floor up.
      if (ff < 1) bad.push(`${e.from}:${e.line} imports ${e.to} from below the config floor`);
      continue;
    }
    const ft = floorOf(to);
    if (ft > ff) bad.push(`${e.from}:${e.line} imports ${e.to}: floor ${ff} (${from}) -> floor ${ft} (${to})`);
  }
  return bad;
}

/** Strongly connected groups of more than one file (Tarjan). */
export function cycles(files: readonly string[], edges: readonly Edge[]): string[][] {
  const adj = new Map<string, string[]>();
  for (const f of files) adj.set(f, []);
  for (const e of edges) if (adj.has(e.to)) adj.get(e.from)!.push(e.to);
  let counter = 0;
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const out: string[][] = [];
  const visit = (v: string): void => {
    index.set(v, counter);
    low.set(v, counter);
    counter++;
    stack.push(v);
    onStack.add(v);
    for (const w of adj.get(v)!) {
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!));
    }
    if (low.get(v) === index.get(v)) {
      const group: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        onStack.delete(w);
        group.push(w);
      } while (w !== v);
      if (group.length > 1) out.push(group.sort());
    }
  };
  for (const f of files) if (!index.has(f)) visit(f);
  return out;
}

function tree(): { files: string[]; edges: Edge[] } {
  const files = [...listTs('src'), ...listTs('registries')].map((f) => relative(ROOT, join(ROOT, f)));
  const edges = files.flatMap((f) => edgesOf(f, readFileSync(join(ROOT, f), 'utf8')));
  return { files, edges };
}

describe('dependency rule', () => {
  const { files, edges } = tree();

  it('sees the tree (the scan is not empty)', () => {
    assert.ok(files.length > 100, `only ${files.length} files found`);
    assert.ok(edges.length > 300, `only ${edges.length} imports found`);
  });

  it('every folder under src/ has a floor', () => {
    const units = new Set(files.filter((f) => f.startsWith('src')).map(unitOf));
    const missing = [...units].filter((u) => floorOf(u) < 0);
    assert.deepEqual(missing, []);
  });

  it('no file imports a higher floor; registries import only discovery and the bottom floor', () => {
    assert.deepEqual(violations(edges), []);
  });

  it('no import cycles', () => {
    assert.deepEqual(cycles(files, edges), []);
  });

  it('the checker catches what it is for', () => {
    const bad = violations([
      { from: 'src/routing/router.ts', to: 'src/server/pipeline.ts', line: 3 },
      { from: 'registries/nacos/index.ts', to: 'src/config/schema.ts', line: 1 },
      { from: 'src/exchange/exchange.ts', to: 'src/balancing/instance.ts', line: 2 },
      { from: 'src/server/pipeline.ts', to: 'src/routing/router.ts', line: 9 },
    ]);
    assert.equal(bad.length, 3, bad.join('\n'));
    const loop = cycles(['a.ts', 'b.ts', 'c.ts'], [
      { from: 'a.ts', to: 'b.ts', line: 1 },
      { from: 'b.ts', to: 'a.ts', line: 1 },
      { from: 'b.ts', to: 'c.ts', line: 1 },
    ]);
    assert.deepEqual(loop, [['a.ts', 'b.ts']]);
    assert.deepEqual(
      edgesOf('src/x/a.ts', "import type { A } from '../y/b.js';\nconst m = await import('./c.js');\nexport { d } from '../../registries/d/index.js';").map((e) => e.to),
      ['src/y/b.ts', 'src/x/c.ts', 'registries/d/index.ts'],
    );
  });
});
