// An ai route compiled from config: which provider serves a model, the
// fallback order (listed, or drawn by weight), the model list.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import pino from 'pino';
import { ClusterManager } from '../../../src/balancing/clusters.js';
import { validateConfig } from '../../../src/config/load.js';
import { Metrics } from '../../../src/observability/metrics.js';
import { compileRoute } from '../../../src/routing/router.js';
import { MemoryStore } from '../../../src/store/memory.js';
import { AiRouteHandler } from '../../../src/upstreams/ai/handler.js';

function handler(ai: unknown): AiRouteHandler {
  const cfg = validateConfig({ routes: [{ name: 'llm', match: { path: { prefix: '/v1/' } }, ai }] });
  const clusters = new ClusterManager({ endpointsOf: () => undefined, on: () => undefined });
  const route = compileRoute(cfg.routes[0]!, 0, (s) => clusters.get(s));
  return new AiRouteHandler(route, { clusters, store: new MemoryStore(), log: pino({ level: 'silent' }), metrics: new Metrics({ processMetrics: false }) });
}

const P = (name: string, extra: Record<string, unknown> = {}) => ({ name, type: 'openai', baseUrl: `http://127.0.0.1:9/${name}/v1`, ...extra });

describe('ai route compile', () => {
  it('models: picks the provider by pattern; no match: the first provider', () => {
    const h = handler({ providers: [P('qwen'), P('claude'), P('local')], models: { 'gpt-4o*': 'qwen', 'claude-*': 'claude', '~^llama': 'local' } });
    assert.deepEqual(h.candidates('gpt-4o-mini').map((p) => p.name), ['qwen']);
    assert.deepEqual(h.candidates('claude-3').map((p) => p.name), ['claude']);
    assert.deepEqual(h.candidates('llama-3-8b').map((p) => p.name), ['local']);
    assert.deepEqual(h.candidates('unknown').map((p) => p.name), ['qwen']);
    h.close();
  });

  it('fallback: the chosen provider first, then the order given without repeating it', () => {
    const h = handler({ providers: [P('a'), P('b'), P('c')], models: { 'b-*': 'b' }, fallback: { order: ['a', 'b', 'c'] } });
    assert.deepEqual(h.candidates('b-1').map((p) => p.name), ['b', 'a', 'c']);
    assert.deepEqual(h.candidates('x').map((p) => p.name), ['a', 'b', 'c']);
    h.close();
  });

  it('weighted fallback draws the order by weight; weight 0 is never drawn', () => {
    const h = handler({ providers: [P('main'), P('heavy', { weight: 3 }), P('light', { weight: 1 }), P('off', { weight: 0 })], models: { '*': 'main' }, fallback: { strategy: 'weighted', order: ['heavy', 'light', 'off'] } });
    let heavyFirst = 0;
    for (let i = 0; i < 2000; i++) {
      const c = h.candidates('m').map((p) => p.name);
      assert.equal(c[0], 'main');
      assert.ok(!c.includes('off'));
      assert.equal(c.length, 3);
      if (c[1] === 'heavy') heavyFirst++;
    }
    assert.ok(heavyFirst > 1300 && heavyFirst < 1700, `heavy drawn first ${heavyFirst}/2000 (expected ~1500)`);
    h.close();
  });

  it('model list: exact names of models: and of every modelMapping, once each', () => {
    const h = handler({ providers: [P('qwen', { modelMapping: { 'gpt-4o': 'qwen-max', '*': 'qwen-turbo' } }), P('lab', { modelMapping: { 'lab-1': '', 'gpt-4o': 'x' } })], models: { 'gpt-4o*': 'qwen', 'exact-one': 'lab', '*': 'qwen' } });
    assert.deepEqual(h.modelList().sort((a, b) => a.id.localeCompare(b.id)), [
      { id: 'exact-one', owned_by: 'lab' },
      { id: 'gpt-4o', owned_by: 'qwen' },
      { id: 'lab-1', owned_by: 'lab' },
    ]);
    h.close();
  });

  it('default base URLs per provider type; discovered services need openai_compatible', () => {
    const h = handler({ providers: [{ name: 'q', type: 'qwen' }, { name: 'z', type: 'zhipu' }, { name: 'g', type: 'gemini' }, { name: 'a', type: 'anthropic' }, { name: 'v', type: 'openai_compatible', service: 'vllm.static' }] });
    const t = Object.fromEntries(h.providers.map((p) => [p.name, p.target ? `${p.target.host}${p.target.basePath}` : p.service]));
    assert.deepEqual(t, { q: 'dashscope.aliyuncs.com/compatible-mode/v1', z: 'open.bigmodel.cn/api/paas/v4', g: 'generativelanguage.googleapis.com', a: 'api.anthropic.com', v: 'vllm.static' });
    h.close();
  });
});

describe('the README example', () => {
  it('is a valid config whose ai route compiles', async () => {
    const { readFileSync } = await import('node:fs');
    const { parseConfigText } = await import('../../../src/config/load.js');
    const readme = readFileSync('README.md', 'utf8');
    const section = readme.slice(readme.indexOf('## AI routes'));
    const yaml = /```yaml\n([\s\S]*?)```/.exec(section)![1]!;
    const cfg = parseConfigText(yaml, 'README', { DASHSCOPE_API_KEY: 'sk-d', ANTHROPIC_API_KEY: 'sk-a' });
    const clusters = new ClusterManager({ endpointsOf: () => undefined, on: () => undefined });
    // The example's store is Redis (tokenRateLimit store: shared): a store that can run scripts stands in.
    const store = Object.assign(new MemoryStore(), { eval: async () => [1, 0, 0, 0, 0, 0, 0, -1] });
    const h = new AiRouteHandler(compileRoute(cfg.routes[0]!, 0, (s) => clusters.get(s)), { clusters, store, log: pino({ level: 'silent' }), metrics: new Metrics({ processMetrics: false }) });
    assert.deepEqual(h.candidates('gpt-4o-mini').map((p) => p.name), ['qwen', 'claude', 'local']);
    assert.deepEqual(h.candidates('Qwen/Qwen2.5-7B').map((p) => p.name), ['local', 'qwen', 'claude']);
    assert.equal(h.providers[0]!.keys.pick(), 'sk-d');
    h.close();
  });
});
