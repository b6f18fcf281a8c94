// The configs users copy: every YAML block of the README that is a config (or
// a part of one made of top-level keys) validates, and where a block names
// services with the registries that give them, every name resolves; the
// shipped configs' service names resolve too. `${VAR}` placeholders get a
// value, as the user's environment would give.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { parse } from 'yaml';
import { loadConfigFile, parseConfigText } from '../../../src/config/load.js';
import { serviceNameWarnings } from '../../../src/config/names.js';
import { ConfigSchema } from '../../../src/config/schema.js';

const TOP_LEVEL = new Set(Object.keys(ConfigSchema.shape));

function envFor(text: string): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const m of text.matchAll(/\$\{([A-Z0-9_]+)\}/g)) env[m[1]!] = 'placeholder-0123456789abcdef';
  return env;
}

const md = readFileSync('README.md', 'utf8');
const blocks = [...md.matchAll(/```ya?ml\n([\s\S]*?)```/g)].map((m) => ({ text: m[1]!, line: md.slice(0, m.index).split('\n').length }));

describe('README YAML blocks', () => {
  it('there are config blocks to check', () => assert.ok(blocks.length >= 10, `${blocks.length} blocks`));
  for (const b of blocks) {
    const doc = parse(b.text) as unknown;
    const keys = doc !== null && typeof doc === 'object' && !Array.isArray(doc) ? Object.keys(doc) : [];
    if (keys.length === 0 || !keys.every((k) => TOP_LEVEL.has(k))) continue; // a part of a route or service, shown alone
    it(`README.md:${b.line} (${keys.join(', ')}) validates${keys.includes('routes') || (keys.includes('services') && keys.includes('registries')) ? ' and its service names resolve' : ''}`, () => {
      // Certificate paths in the README are the reader's own files: validated as a document, not on this disk.
      const cfg = parseConfigText(b.text, `README.md:${b.line}`, envFor(b.text));
      if (keys.includes('routes') || (keys.includes('services') && keys.includes('registries'))) assert.deepEqual(serviceNameWarnings(cfg), []);
    });
  }
});

describe('shipped configs name only services their registries give', () => {
  const files = ['config/meshgate.yaml', 'deploy/docker.yaml', 'deploy/meshgate.compose.yaml', 'deploy/kubernetes/meshgate.yaml', ...readdirSync('config/examples').filter((f) => f.endsWith('.yaml')).map((f) => join('config/examples', f))];
  for (const f of files) {
    it(f, () => {
      const text = readFileSync(f, 'utf8');
      assert.deepEqual(serviceNameWarnings(loadConfigFile(f, envFor(text))), []);
    });
  }
});
