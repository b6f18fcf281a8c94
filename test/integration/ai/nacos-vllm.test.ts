// An openai_compatible provider that is a vLLM fleet registered in Nacos (the
// Nacos double, registered through the real npm client): the gateway
// discovers the instances and balances calls over them like any service;
// an instance that leaves the registry stops getting calls.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { NacosNamingClient } from 'nacos';
import OpenAI from 'openai';
import type { Gateway } from '../../../src/gateway.js';
import { startNacosDouble, type NacosDouble } from '../../doubles/nacos/server.js';
import { startOpenAILikeDouble, type LlmDouble } from '../../doubles/llm/openai-like.js';
import { startGateway, waitFor } from '../../helpers/gateway.js';

const silent = { info() {}, warn() {}, error() {}, debug() {}, log() {} };

describe('ai route: vLLM fleet discovered in Nacos', { timeout: 60_000 }, () => {
  let nacos: NacosDouble;
  let v1: LlmDouble;
  let v2: LlmDouble;
  let naming: NacosNamingClient;
  let gw: Gateway;
  const service = 'vllm.DEFAULT-GROUP.public.nacos';

  before(async () => {
    nacos = await startNacosDouble();
    v1 = await startOpenAILikeDouble('vllm');
    v2 = await startOpenAILikeDouble('vllm');
    naming = new NacosNamingClient({ logger: silent as never, serverList: nacos.address, namespace: 'public' });
    await naming.ready();
    for (const v of [v1, v2]) await naming.registerInstance('vllm', { ip: '127.0.0.1', port: v.port, weight: 1, healthy: true, enabled: true, ephemeral: true } as never);
    gw = await startGateway({
      registries: [{ name: 'nacos', type: 'nacos', servers: [nacos.address], serviceListIntervalMs: 200, pollIntervalMs: 500 }],
      routes: [{ name: 'llm', match: { path: { prefix: '/v1/' } }, ai: { providers: [{ name: 'local', type: 'openai_compatible', service }] } } as never],
    } as never);
    await waitFor(() => gw.clusters.get(service).instances.length === 2, 20_000);
  });
  after(async () => {
    await gw?.stop();
    await (naming as unknown as { close(): Promise<void> })?.close?.();
    await v1?.stop();
    await v2?.stop();
    await nacos?.stop();
  });

  it('balances over the registered instances', async () => {
    const c = new OpenAI({ baseURL: `${gw.listenerUrl()}/v1`, apiKey: 'x', maxRetries: 0 });
    for (let i = 0; i < 6; i++) {
      const s = await c.chat.completions.create({ model: 'Qwen/Qwen2.5-7B-Instruct', messages: [{ role: 'user', content: `n${i}` }], stream: true });
      let t = '';
      for await (const ch of s) t += ch.choices[0]?.delta?.content ?? '';
      assert.equal(t, `echo: n${i}`);
    }
    assert.ok(v1.chatCount() >= 1 && v2.chatCount() >= 1, `both instances served (${v1.chatCount()}, ${v2.chatCount()})`);
    assert.equal(v1.chatCount() + v2.chatCount(), 6);
  });

  it('an instance deregistered stops getting calls', async () => {
    await naming.deregisterInstance('vllm', { ip: '127.0.0.1', port: v2.port } as never);
    await waitFor(() => gw.clusters.get(service).instances.length === 1, 20_000);
    const n2 = v2.chatCount();
    const c = new OpenAI({ baseURL: `${gw.listenerUrl()}/v1`, apiKey: 'x', maxRetries: 0 });
    for (let i = 0; i < 4; i++) await c.chat.completions.create({ model: 'm', messages: [{ role: 'user', content: 'x' }] });
    assert.equal(v2.chatCount(), n2);
  });
});
