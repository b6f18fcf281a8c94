// Every OpenAI-compatible provider type against the double of its flavour:
// the path and auth header the gateway sends, usage read from where that
// provider puts it, SSE comments and CRLF ends tolerated, and the client
// getting OpenAI's exact stream contract either way (usage chunk only when
// asked, usage counted always).
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import OpenAI from 'openai';
import type { Gateway } from '../../../src/gateway.js';
import { startOpenAILikeDouble, type Flavour, type LlmDouble } from '../../doubles/llm/openai-like.js';
import { startGateway } from '../../helpers/gateway.js';

interface Case {
  flavour: Flavour;
  type: string;
  /** baseUrl given to the gateway (the SDK's base URL for this provider). */
  base: (d: LlmDouble) => string;
  path: string;
  auth: (key: string) => [string, string];
  extra?: Record<string, unknown>;
}

const bearer = (k: string): [string, string] => ['authorization', `Bearer ${k}`];
const CASES: Case[] = [
  { flavour: 'openai', type: 'openai', base: (d) => d.baseUrl, path: '/v1/chat/completions', auth: bearer },
  { flavour: 'azure', type: 'azure', base: (d) => d.baseUrl, path: '/openai/deployments/azure-dep/chat/completions?api-version=2024-10-21', auth: (k) => ['api-key', k], extra: { modelMapping: { '*': 'azure-dep' } } },
  { flavour: 'qwen', type: 'qwen', base: (d) => d.baseUrl, path: '/compatible-mode/v1/chat/completions', auth: bearer },
  { flavour: 'deepseek', type: 'deepseek', base: (d) => d.baseUrl, path: '/chat/completions', auth: bearer },
  { flavour: 'moonshot', type: 'moonshot', base: (d) => d.baseUrl, path: '/v1/chat/completions', auth: bearer },
  { flavour: 'zhipu', type: 'zhipu', base: (d) => d.baseUrl, path: '/api/paas/v4/chat/completions', auth: bearer },
  { flavour: 'mistral', type: 'mistral', base: (d) => d.baseUrl, path: '/v1/chat/completions', auth: bearer },
  { flavour: 'groq', type: 'groq', base: (d) => d.baseUrl, path: '/openai/v1/chat/completions', auth: bearer },
  { flavour: 'openrouter', type: 'openrouter', base: (d) => d.baseUrl, path: '/api/v1/chat/completions', auth: bearer, extra: { headers: { 'HTTP-Referer': 'https://example.test', 'X-Title': 'meshgate' } } },
  { flavour: 'ollama', type: 'ollama', base: (d) => `http://127.0.0.1:${d.port}`, path: '/v1/chat/completions', auth: bearer, extra: { api: 'openai' } },
  { flavour: 'vllm', type: 'openai_compatible', base: (d) => d.baseUrl, path: '/v1/chat/completions', auth: bearer },
];

describe('ai route: OpenAI-compatible provider types', () => {
  let gw: Gateway;
  const doubles = new Map<Flavour, LlmDouble>();
  let client: OpenAI;

  before(async () => {
    for (const c of CASES) doubles.set(c.flavour, await startOpenAILikeDouble(c.flavour, { keys: [`key-${c.flavour}`] }));
    gw = await startGateway({
      routes: [
        {
          name: 'llm',
          match: { path: { prefix: '/v1/' } },
          ai: {
            providers: CASES.map((c) => ({ name: c.flavour, type: c.type, baseUrl: c.base(doubles.get(c.flavour)!), apiKeys: [`key-${c.flavour}`], ...c.extra })),
            models: Object.fromEntries(CASES.map((c) => [`${c.flavour}-*`, c.flavour])),
            retries: 0,
          },
        } as never,
      ],
    });
    client = new OpenAI({ baseURL: `${gw.listenerUrl()}/v1`, apiKey: 'client', maxRetries: 0 });
  });
  after(async () => {
    await gw?.stop();
    for (const d of doubles.values()) await d.stop();
  });

  for (const c of CASES) {
    describe(c.flavour, () => {
      it('non-stream: path, auth header, usage', async () => {
        const d = doubles.get(c.flavour)!;
        const r = await client.chat.completions.create({ model: `${c.flavour}-m`, messages: [{ role: 'user', content: 'hi there' }], max_completion_tokens: 50 });
        assert.equal(r.choices[0]!.message.content, 'echo: hi there');
        const got = d.received.at(-1)!;
        assert.equal(got.url, c.path);
        const [h, v] = c.auth(`key-${c.flavour}`);
        assert.equal(got.headers[h], v);
        assert.equal(got.headers.authorization === 'Bearer client', false, 'the client key never reaches the provider');
        if (c.flavour === 'zhipu') {
          assert.equal(got.body!.max_tokens, 50, 'zhipu knows max_tokens only');
          assert.equal(got.body!.max_completion_tokens, undefined);
        }
        if (c.flavour === 'openrouter') assert.equal(got.headers['x-title'], 'meshgate');
      });

      it('stream without include_usage: no usage chunk reaches the client, usage is still counted', async () => {
        const before = await tokens(gw, c.flavour);
        const s = await client.chat.completions.create({ model: `${c.flavour}-m`, messages: [{ role: 'user', content: 'stream please' }], stream: true });
        let text = '';
        for await (const ch of s) {
          assert.ok(ch.choices.length > 0, 'no choices:[] chunk');
          assert.ok(!ch.usage, 'no usage in content chunks');
          assert.equal((ch as { x_groq?: { usage?: unknown } }).x_groq?.usage, undefined);
          assert.equal((ch.choices[0] as { usage?: unknown }).usage, undefined);
          text += ch.choices[0]!.delta?.content ?? '';
        }
        assert.equal(text, 'echo: stream please');
        const got = doubles.get(c.flavour)!.received.at(-1)!;
        if (c.flavour === 'zhipu') assert.equal(got.body!.stream_options, undefined, 'zhipu rejects stream_options');
        else assert.equal(got.body!.stream_options.include_usage, true);
        const after = await tokens(gw, c.flavour);
        assert.ok(after.output > before.output, 'provider usage counted');
        assert.ok(after.estimated === before.estimated, 'from the provider, not estimated');
      });

      it('stream with include_usage: exactly one usage chunk, last, with choices: []', async () => {
        const s = await client.chat.completions.create({ model: `${c.flavour}-m`, messages: [{ role: 'user', content: 'with usage' }], stream: true, stream_options: { include_usage: true } });
        const all: OpenAI.ChatCompletionChunk[] = [];
        for await (const ch of s) all.push(ch);
        const withUsage = all.filter((x) => x.usage);
        assert.equal(withUsage.length, 1);
        assert.equal(all.at(-1), withUsage[0]);
        assert.deepEqual(withUsage[0]!.choices, []);
        assert.ok(withUsage[0]!.usage!.completion_tokens > 0);
        assert.equal(withUsage[0]!.usage!.total_tokens, withUsage[0]!.usage!.prompt_tokens + withUsage[0]!.usage!.completion_tokens);
      });
    });
  }

  it('azure: a model name cannot leave the deployment path segment', async () => {
    const gw2 = await startGateway({ routes: [{ name: 'llm', match: { path: { prefix: '/v1/' } }, ai: { providers: [{ name: 'az', type: 'azure', baseUrl: doubles.get('azure')!.baseUrl, apiKeys: ['key-azure'] }] } } as never] });
    try {
      const c = new OpenAI({ baseURL: `${gw2.listenerUrl()}/v1`, apiKey: 'x', maxRetries: 0 });
      const r = await c.chat.completions.create({ model: '../../x?api-version=evil#', messages: [{ role: 'user', content: 'p' }] });
      assert.equal(r.choices[0]!.message.content, 'echo: p');
      assert.equal(doubles.get('azure')!.received.at(-1)!.url, '/openai/deployments/..%2F..%2Fx%3Fapi-version%3Devil%23/chat/completions?api-version=2024-10-21');
    } finally {
      await gw2.stop();
    }
  });

  it('a provider that reports no usage is estimated with the tokenizer and marked so', async () => {
    const before = await tokens(gw, 'openai');
    const s = await client.chat.completions.create({ model: 'no-usage', messages: [{ role: 'user', content: 'the quick brown fox jumps over the lazy dog' }], stream: true, stream_options: { include_usage: true } });
    let usage: OpenAI.CompletionUsage | undefined;
    for await (const ch of s) if (ch.usage) usage = ch.usage;
    assert.ok(usage && usage.prompt_tokens >= 9, 'an estimated usage chunk for the client that asked');
    const after = await tokens(gw, 'openai');
    assert.equal(after.estimated, before.estimated + 1);
  });
});

async function tokens(gw: Gateway, provider: string): Promise<{ output: number; estimated: number }> {
  const text = await gw.metrics.registry.metrics();
  let output = 0;
  let estimated = 0;
  for (const l of text.split('\n')) {
    if (l.startsWith('meshgate_ai_tokens_total{') && l.includes(`provider="${provider}"`) && l.includes('kind="output"')) output += Number(l.split(' ').at(-1));
    if (l.startsWith('meshgate_ai_estimated_usage_total{') && l.includes(`provider="${provider}"`)) estimated += Number(l.split(' ').at(-1));
  }
  return { output, estimated };
}
