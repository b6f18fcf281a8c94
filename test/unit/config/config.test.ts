import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { dryCompile } from '../../../src/server/dry-compile.js';
import { ConfigError, parseConfigText, validateConfig } from '../../../src/config/load.js';

const problems = (fn: () => unknown): string[] => {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof ConfigError, String(e));
    return e.problems;
  }
  assert.fail('expected a ConfigError');
};

describe('config validation', () => {
  it('the example contract parses (with its env vars set)', async () => {
    const { readFileSync } = await import('node:fs');
    const text = readFileSync('test/fixtures/contract.example.yaml', 'utf8');
    const env = { NACOS_PASSWORD: 'p', CONSUL_TOKEN: 't' };
    const cfg = parseConfigText(text, 'example', env);
    assert.equal(cfg.routes[0]!.name, 'users');
    assert.equal(cfg.routes[0]!.canary?.weight, 5);
  });

  it('refuses a filter kind it does not have, and a cc rule with a bad limit, naming the key', async () => {
    // A filter entry's settings belong to its kind: the config compiles them (meshgate validate, start and reload all do).
    await assert.rejects(dryCompile(validateConfig({ filters: [{ type: 'captcha' }] })), /^Error: filters\[0\]\.type: unknown filter "captcha" \(known: .*\bcc\b.*\)/);
    await assert.rejects(dryCompile(validateConfig({ filters: [{ type: 'cc', rules: [{ key: 'ip', qps: -1 }] }] })), /filters\[0\]\.rules\[0\]\.qps: /);
    await dryCompile(validateConfig({ filters: [{ type: 'cc', rules: [{ key: 'ip', qps: 50, qpm: 1000, blockSeconds: 300 }] }] }));
  });

  it('takes ai routes, and names a bad key inside one', async () => {
    const cfg = validateConfig({ routes: [{ name: 'llm', ai: { providers: [{ name: 'q', type: 'qwen' }] } }] });
    assert.equal(cfg.routes[0]!.ai!.providers[0]!.type, 'qwen');
    const p = problems(() => validateConfig({ routes: [{ name: 'llm', ai: { providers: [{ name: 'q', type: 'qwen', apiKey: 'x' }] } }] }));
    assert.ok(p.some((x) => x.startsWith('routes[0].ai.providers[0]') && x.includes('apiKey')), p.join('; '));
  });

  it("names a bad filter setting by its key path, from the filter kind's own schema", async () => {
    await assert.rejects(
      dryCompile(validateConfig({ routes: [{ name: 'r', backends: [{ service: 's' }], filters: [{ type: 'flow_control', rules: [{ count: -1 }] }] }] })),
      /routes\[0\]\.filters\[0\]\.rules\[0\]\.count: /,
    );
    await assert.rejects(dryCompile(validateConfig({ filters: [{ type: 'headers', colour: 'red' }] })), /filters\[0\]: Unrecognized key: "colour"/);
    await assert.rejects(
      dryCompile(validateConfig({ routes: [{ name: 'r', match: { path: { prefix: '/a' } }, backends: [{ service: 's' }], filters: [{ type: 'rewrite', path: { regex: '(', substitution: 'x' } }] }] })),
      /routes\[0\]\.filters\[0\]\.path\.regex: invalid regular expression/,
    );
  });

  it('interpolates ${VAR} and ${VAR:-default} in every string, and names unset variables', () => {
    const cfg = validateConfig({ registries: [{ name: 'r', type: 'static', endpoints: ['${H}:${P:-9000}'] }] }, 'x', { H: '10.1.1.1' });
    assert.deepEqual(cfg.registries[0]!.type === 'static' && cfg.registries[0]!.endpoints, ['10.1.1.1:9000']);
    assert.deepEqual(
      problems(() => validateConfig({ registries: [{ name: 'r', type: 'static', endpoints: ['${H}:1'] }] }, 'x', {})),
      ['registries[0].endpoints[0]: environment variable H is not set'],
    );
  });

  it('names every bad key by its path', () => {
    assert.deepEqual(problems(() => validateConfig({ routes: [{ name: 'r', backends: [{ service: 's', weight: 1.5 }] }] })), [
      'routes[0].backends[0].weight: expected int, received number',
    ]);
    assert.deepEqual(problems(() => validateConfig({ listeners: [{ name: 'l', address: 'nope' }] })), ['listeners[0].address: must be host:port']);
    assert.deepEqual(problems(() => validateConfig({ services: { s: { loadBalancer: { type: 'fastest' } } } })).length, 1);
    assert.match(problems(() => validateConfig({ services: { s: { loadBalancer: { type: 'fastest' } } } }))[0]!, /^services\.s\.loadBalancer\.type/);
  });

  it('rejects unknown keys anywhere', () => {
    assert.deepEqual(problems(() => validateConfig({ admin: { address: '127.0.0.1:1', colour: 'red' } })), ['admin: unknown key(s): colour']);
  });

  it('semantic checks: duplicate names, bad regex, canary without byHeader, static endpoint syntax', () => {
    const p = problems(() =>
      validateConfig({
        registries: [{ name: 'r', type: 'static', endpoints: ['1.2.3.4:80 weight=x'] }],
        routes: [
          { name: 'a', match: { path: { regex: '(' } }, backends: [{ service: 's' }] },
          { name: 'a', backends: [{ service: 's' }], canary: { byHeaderValue: 'v', backends: [{ service: 't' }] } },
        ],
      }),
    );
    assert.ok(p.includes('routes[1].name: duplicate name "a"'), p.join('\n'));
    assert.ok(p.some((x) => x.startsWith('routes[0].match.path.regex: invalid regular expression')));
    assert.ok(p.includes('routes[1].canary.byHeader: required with byHeaderValue or byHeaderPattern'));
    assert.ok(p.includes('registries[0].endpoints[0]: weight in "1.2.3.4:80 weight=x" must be a number >= 0'));
  });

  it('a route needs a backend with weight > 0', () => {
    assert.deepEqual(problems(() => validateConfig({ routes: [{ name: 'a', backends: [] }] })), [
      'routes[0].backends: a route needs at least one backend (or dubbo, ai, directResponse)',
    ]);
  });

  it('YAML syntax errors are reported, not thrown raw', () => {
    assert.match(problems(() => parseConfigText('routes: [\n'))[0]!, /^YAML: /);
  });
});
