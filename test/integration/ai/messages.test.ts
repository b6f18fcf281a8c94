// POST /v1/messages on an ai route (Anthropic clients, the real
// @anthropic-ai/sdk): passed through natively to an anthropic provider, and
// converted around the OpenAI path for a provider that speaks OpenAI. Also
// the other way: an OpenAI client served by the anthropic provider through
// its translator, with the route's usage accounting.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';
import type { Gateway } from '../../../src/gateway.js';
import { startAnthropicDouble, type AnthropicDouble } from '../../doubles/llm/anthropic.js';
import { startOpenAILikeDouble, type LlmDouble } from '../../doubles/llm/openai-like.js';
import { startGateway } from '../../helpers/gateway.js';

describe('ai route: Anthropic Messages API and the anthropic provider', () => {
  let gw: Gateway;
  let claude: AnthropicDouble;
  let lab: LlmDouble;
  let anthropic: Anthropic;

  before(async () => {
    claude = await startAnthropicDouble({ keys: ['sk-ant-real'] });
    lab = await startOpenAILikeDouble('openai', { keys: ['sk-lab'] });
    gw = await startGateway({
      routes: [
        {
          name: 'llm',
          match: { path: { prefix: '/v1/' } },
          ai: {
            providers: [
              { name: 'claude', type: 'anthropic', baseUrl: claude.baseUrl, apiKeys: ['sk-ant-real'], modelMapping: { 'claude-latest': 'claude-sonnet-4-5' } },
              { name: 'lab', type: 'openai', baseUrl: lab.baseUrl, apiKeys: ['sk-lab'] },
            ],
            models: { 'claude-*': 'claude', '*': 'lab' },
          },
        } as never,
      ],
    });
    anthropic = new Anthropic({ baseURL: gw.listenerUrl(), apiKey: 'client-key', maxRetries: 0 });
  });
  after(async () => {
    await gw?.stop();
    await claude?.stop();
    await lab?.stop();
  });

  it('an Anthropic client on the anthropic provider: passed through with the provider key and mapped model', async () => {
    const m = await anthropic.messages.create({ model: 'claude-latest', max_tokens: 100, messages: [{ role: 'user', content: 'native hello' }] });
    assert.equal(m.content[0]!.type, 'text');
    assert.equal((m.content[0] as { text: string }).text, 'echo: native hello');
    const got = claude.received.at(-1)!;
    assert.equal(got.headers['x-api-key'], 'sk-ant-real');
    assert.equal((got.body as { model: string }).model, 'claude-sonnet-4-5');
    assert.ok(got.headers['anthropic-version'], 'the client\'s anthropic-version is passed on');
    const sdkVersion = await (async () => {
      let v: string | undefined;
      const spy = new Anthropic({ baseURL: gw.listenerUrl(), apiKey: 'k', maxRetries: 0, fetch: async (url, init) => ((v = new Headers(init?.headers).get('anthropic-version') ?? undefined), fetch(url, init)) });
      await spy.messages.create({ model: 'claude-latest', max_tokens: 5, messages: [{ role: 'user', content: 'v' }] });
      return v;
    })();
    assert.equal(claude.received.at(-1)!.headers['anthropic-version'], sdkVersion);
  });

  it('an Anthropic client streams natively, and its usage is counted', async () => {
    const s = anthropic.messages.stream({ model: 'claude-latest', max_tokens: 100, messages: [{ role: 'user', content: 'native stream' }] });
    const final = await s.finalMessage();
    assert.equal((final.content[0] as { text: string }).text, 'echo: native stream');
    const metrics = await gw.metrics.registry.metrics();
    assert.match(metrics, /meshgate_ai_tokens_total\{[^}]*provider="claude"[^}]*kind="output"[^}]*\} [1-9]/);
  });

  it('an Anthropic client on an OpenAI provider: converted both ways, streamed and not', async () => {
    const m = await anthropic.messages.create({ model: 'gpt-x', max_tokens: 50, system: 'be brief', messages: [{ role: 'user', content: 'converted' }] });
    assert.equal((m.content[0] as { text: string }).text, 'echo: converted');
    assert.equal(m.stop_reason, 'end_turn');
    const sent = lab.received.at(-1)!.body!;
    assert.equal(sent.messages[0].role, 'system');
    const s = anthropic.messages.stream({ model: 'gpt-x', max_tokens: 50, messages: [{ role: 'user', content: 'converted stream' }] });
    const final = await s.finalMessage();
    assert.equal((final.content[0] as { text: string }).text, 'echo: converted stream');
    assert.ok(final.usage.output_tokens > 0, 'usage reached message_delta (include_usage forced upstream)');
  });

  it('errors reach an Anthropic client in Anthropic shape', async () => {
    await assert.rejects(anthropic.messages.create({ model: 'err-429', max_tokens: 10, messages: [{ role: 'user', content: 'x' }] }), (e: unknown) => e instanceof Anthropic.RateLimitError);
  });

  it('an OpenAI client on the anthropic provider goes through the translator', async () => {
    const c = new OpenAI({ baseURL: `${gw.listenerUrl()}/v1`, apiKey: 'x', maxRetries: 0 });
    const r = await c.chat.completions.create({ model: 'claude-latest', messages: [{ role: 'user', content: 'translated' }] });
    assert.equal(r.choices[0]!.message.content, 'echo: translated');
    assert.equal(claude.received.at(-1)!.url, '/v1/messages');
    const s = await c.chat.completions.create({ model: 'claude-latest', messages: [{ role: 'user', content: 'translated stream' }], stream: true, stream_options: { include_usage: true } });
    let text = '';
    let usage: OpenAI.CompletionUsage | undefined;
    for await (const ch of s) {
      text += ch.choices[0]?.delta?.content ?? '';
      if (ch.usage) usage = ch.usage;
    }
    assert.equal(text, 'echo: translated stream');
    assert.ok(usage && usage.completion_tokens > 0);
  });
});
