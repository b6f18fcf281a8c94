// The registry plug-in list: one entry per kind, each complete; registries
// import nothing from src/ but src/discovery; loading the list (as the config
// schema does) loads no adapter and no registry client library.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, it } from 'node:test';
import { REGISTRY_PLUGINS } from '../../../registries/index.js';
import { loadRegistryFactory, registryPlugin } from '../../../src/discovery/registries.js';

const ROOT = resolve(import.meta.dirname, '../../..');
const REGISTRIES = join(ROOT, 'registries');

function tsFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((e) => {
    const p = join(dir, e);
    return statSync(p).isDirectory() ? tsFiles(p) : p.endsWith('.ts') ? [p] : [];
  });
}

/** Specifiers a file loads when it is imported: static imports and re-exports, not `import type` nor import(). */
function staticImports(file: string): string[] {
  const src = readFileSync(file, 'utf8');
  const out: string[] = [];
  const re = /^\s*(import|export)\s+(type\s+)?(?:[^'";]*?\s+from\s+)?['"]([^'"]+)['"]/gm;
  for (const m of src.matchAll(re)) if (!m[2]) out.push(m[3]!);
  return out;
}

/** Every file and package loaded, transitively, by importing `entry`. */
function loadedBy(entry: string): { files: Set<string>; packages: Set<string> } {
  const files = new Set<string>();
  const packages = new Set<string>();
  const visit = (file: string): void => {
    if (files.has(file)) return;
    files.add(file);
    for (const spec of staticImports(file)) {
      if (spec.startsWith('.')) visit(resolve(dirname(file), spec.replace(/\.js$/, '.ts')));
      else packages.add(spec);
    }
  };
  visit(entry);
  return { files, packages };
}

describe('registry plug-ins', () => {
  it('one plug-in per kind folder, each with a type matching its schema, a service suffix and an adapter', async () => {
    const folders = readdirSync(REGISTRIES).filter((e) => statSync(join(REGISTRIES, e)).isDirectory()).sort();
    assert.deepEqual(REGISTRY_PLUGINS.map((p) => p.type).sort(), folders);
    for (const p of REGISTRY_PLUGINS) {
      assert.equal(p.schema.shape.type.value, p.type);
      assert.match(p.serviceSuffix, /^[a-z][a-z0-9-]*$/, p.type);
      assert.equal(registryPlugin(p.type), p);
      assert.equal(typeof (await p.load()), 'function', p.type);
      assert.equal(await loadRegistryFactory(p.type), await p.load());
    }
    assert.throws(() => registryPlugin('etcd'), /unknown registry type "etcd"/);
  });

  it('the suffixes are the ones gateway service names end in', () => {
    assert.deepEqual(Object.fromEntries(REGISTRY_PLUGINS.map((p) => [p.type, p.serviceSuffix])), {
      static: 'static',
      dns: 'dns',
      zookeeper: 'zookeeper',
      nacos: 'nacos',
      consul: 'consul',
      eureka: 'eureka',
    });
  });

  it('registries import nothing from src/ but src/discovery/', () => {
    for (const file of tsFiles(REGISTRIES)) {
      const src = readFileSync(file, 'utf8');
      for (const m of src.matchAll(/(?:from\s+|import\()\s*['"]([^'"]+)['"]/g)) {
        const target = relative(ROOT, resolve(dirname(file), m[1]!));
        if (!m[1]!.startsWith('.') || !target.startsWith('src/')) continue;
        assert.match(target, /^src\/discovery\//, `${relative(ROOT, file)} imports ${m[1]}`);
      }
    }
  });

  it('loading the list loads schemas only: no adapter, no registry client library', () => {
    const { files, packages } = loadedBy(join(REGISTRIES, 'index.ts'));
    assert.deepEqual([...packages].sort(), ['zod']);
    const adapters = [...files].map((f) => relative(REGISTRIES, f)).filter((f) => !/^(index|[a-z]+\/(plugin|schema|endpoint))\.ts$/.test(f));
    assert.deepEqual(adapters, ['../src/discovery/types.ts']);
  });
});
