// The real openai SDK through the gateway to an Anthropic Messages upstream
// (the anthropic double), and the real @anthropic-ai/sdk through the gateway
// both to that upstream (pass-through) and to an OpenAI-speaking upstream
// (converted by messages-inbound). What a user of either SDK would notice:
// text, streamed tool calls assembled by the SDK, the usage chunk only when
// asked, and upstream failures surfacing as the SDK's own error classes.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';
import type { Gateway } from '../../../src/gateway.js';
import { startAnthropicDouble, type AnthropicDouble } from '../../doubles/llm/anthropic.js';
import { startOpenAILikeDouble, type LlmDouble } from '../../doubles/llm/openai-like.js';
import { startGateway } from '../../helpers/gateway.js';

const WEATHER_TOOL = {
  type: 'function' as const,
  function: { name: 'weather', description: 'Current weather', parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] } },
};

describe('ai route: OpenAI clients on an Anthropic upstream, Anthropic clients on both kinds', () => {
  let gw: Gateway;
  let claude: AnthropicDouble;
  let lab: LlmDouble;
  let openai: OpenAI;
  let anthropic: Anthropic;

  before(async () => {
    claude = await startAnthropicDouble({ keys: ['sk-ant-provider'] });
    lab = await startOpenAILikeDouble('openai', { keys: ['sk-lab'] });
    gw = await startGateway({
      routes: [
        {
          name: 'llm',
          match: { path: { prefix: '/v1/' } },
          ai: {
            providers: [
              { name: 'claude', type: 'anthropic', baseUrl: claude.baseUrl, apiKeys: ['sk-ant-provider'], modelMapping: { 'gpt-4o': 'claude-sonnet-4-5' } },
              { name: 'lab', type: 'openai', baseUrl: lab.baseUrl, apiKeys: ['sk-lab'] },
            ],
            models: { 'gpt-4o': 'claude', 'claude-*': 'claude', '*': 'lab' },
          },
        } as never,
      ],
    });
    openai = new OpenAI({ baseURL: `${gw.listenerUrl()}/v1`, apiKey: 'client-key', maxRetries: 0 });
    anthropic = new Anthropic({ baseURL: gw.listenerUrl(), apiKey: 'x', maxRetries: 0 });
  });
  after(async () => {
    await gw?.stop();
    await claude?.stop();
    await lab?.stop();
  });

  it('a chat completion reaches Anthropic translated: system on top, max_tokens 4096, provider key and version', async () => {
    claude.script.push({ text: 'Bonjour!', usage: { input: 21, output: 4 } });
    const r = await openai.chat.completions.create({
      model: 'gpt-4o',
      messages: [
        { role: 'system', content: 'Answer in French.' },
        { role: 'user', content: 'Hello' },
      ],
      stop: ['###'],
    });
    assert.equal(r.choices[0]!.message.content, 'Bonjour!');
    assert.equal(r.choices[0]!.finish_reason, 'stop');
    assert.deepEqual(r.usage && { p: r.usage.prompt_tokens, c: r.usage.completion_tokens, t: r.usage.total_tokens }, { p: 21, c: 4, t: 25 });
    const got = claude.received.at(-1)!;
    assert.equal(got.path, '/v1/messages');
    assert.equal(got.headers['x-api-key'], 'sk-ant-provider');
    assert.equal(got.headers['anthropic-version'], '2023-06-01');
    assert.equal(got.headers.authorization, undefined, 'the client key is not forwarded');
    assert.deepEqual(got.body, {
      model: 'claude-sonnet-4-5',
      max_tokens: 4096,
      messages: [{ role: 'user', content: [{ type: 'text', text: 'Hello' }] }],
      system: 'Answer in French.',
      stop_sequences: ['###'],
    });
  });

  it('streamed tool calls (after a thinking block) are assembled by the SDK with the right indexes', async () => {
    claude.script.push({
      thinking: 'Two cities, two calls.',
      text: 'Checking both.',
      toolUses: [
        { name: 'weather', input: { city: 'Paris' } },
        { name: 'weather', input: { city: 'Rome, Italy' } },
      ],
    });
    const final = await openai.chat.completions
      .stream({ model: 'gpt-4o', messages: [{ role: 'user', content: 'Weather in Paris and Rome?' }], tools: [WEATHER_TOOL] })
      .finalChatCompletion();
    const msg = final.choices[0]!.message;
    assert.equal(msg.content, 'Checking both.');
    assert.equal(final.choices[0]!.finish_reason, 'tool_calls');
    const calls = msg.tool_calls!.map((c) => (c.type === 'function' ? [c.function.name, JSON.parse(c.function.arguments)] : []));
    assert.deepEqual(calls, [
      ['weather', { city: 'Paris' }],
      ['weather', { city: 'Rome, Italy' }],
    ]);
    assert.ok(msg.tool_calls!.every((c) => c.id.startsWith('toolu_')));
    assert.deepEqual((claude.received.at(-1)!.body!.tools as unknown[])[0], { name: 'weather', description: 'Current weather', input_schema: WEATHER_TOOL.function.parameters });

    // The conversation continues with the tool results: the double refuses
    // anything Anthropic would (alternation, tool_result placement and ids).
    claude.script.push({ text: 'Rome is warmer.' });
    const next = await openai.chat.completions.create({
      model: 'gpt-4o',
      messages: [
        { role: 'user', content: 'Weather in Paris and Rome?' },
        msg as OpenAI.ChatCompletionAssistantMessageParam,
        { role: 'tool', tool_call_id: msg.tool_calls![0]!.id, content: '18C' },
        { role: 'tool', tool_call_id: msg.tool_calls![1]!.id, content: '24C' },
      ],
      tools: [WEATHER_TOOL],
    });
    assert.equal(next.choices[0]!.message.content, 'Rome is warmer.');
    const sent = claude.received.at(-1)!.body!.messages as Array<{ role: string; content: Array<{ type: string }> }>;
    assert.deepEqual(
      sent.map((m) => [m.role, m.content.map((b) => b.type)]),
      [
        ['user', ['text']],
        ['assistant', ['text', 'tool_use', 'tool_use']],
        ['user', ['tool_result', 'tool_result']],
      ],
    );
  });

  it('the usage chunk (choices: []) comes only when include_usage was asked, with Anthropic cumulative counts', async () => {
    const collect = async (includeUsage: boolean) => {
      claude.script.push({ text: 'one two three', usage: { input: 40, output: 7, cacheRead: 30 } });
      const s = await openai.chat.completions.create({
        model: 'gpt-4o',
        messages: [{ role: 'user', content: 'count' }],
        stream: true,
        ...(includeUsage ? { stream_options: { include_usage: true } } : {}),
      });
      const chunks: OpenAI.ChatCompletionChunk[] = [];
      for await (const c of s) chunks.push(c);
      return chunks;
    };
    const withUsage = await collect(true);
    const last = withUsage.at(-1)!;
    assert.deepEqual(last.choices, []);
    assert.equal(last.usage!.prompt_tokens, 70);
    assert.equal(last.usage!.completion_tokens, 7, 'message_delta output is cumulative: not 7 + 1');
    assert.equal(last.usage!.prompt_tokens_details?.cached_tokens, 30);
    assert.equal(withUsage.map((c) => c.choices[0]?.delta?.content ?? '').join(''), 'one two three');
    assert.equal(new Set(withUsage.map((c) => c.id)).size, 1, 'one id for the whole stream');

    const without = await collect(false);
    assert.ok(without.every((c) => c.choices.length === 1), 'no usage chunk for a client that did not ask');
    assert.ok(without.every((c) => !c.usage));
    assert.equal(without.at(-1)!.choices[0]!.finish_reason, 'stop');
  });

  it('Anthropic errors become OpenAI SDK errors: 529 -> 503, 429 -> RateLimitError, 400 -> BadRequestError', async () => {
    claude.script.push({ kind: 'error', status: 529, type: 'overloaded_error', message: 'Overloaded' });
    await assert.rejects(openai.chat.completions.create({ model: 'gpt-4o', messages: [{ role: 'user', content: 'x' }] }), (e: unknown) => {
      assert.ok(e instanceof OpenAI.InternalServerError, String(e));
      assert.equal(e.status, 503);
      assert.match(e.message, /Overloaded/);
      return true;
    });
    claude.script.push({ kind: 'error', status: 429, type: 'rate_limit_error', message: 'Number of request tokens has exceeded your per-minute rate limit' });
    await assert.rejects(openai.chat.completions.create({ model: 'gpt-4o', messages: [{ role: 'user', content: 'x' }] }), (e: unknown) => e instanceof OpenAI.RateLimitError && e.code === 'rate_limit_exceeded');
    // A request the gateway's translator sends but Anthropic refuses (bad tool arguments are refused before that).
    await assert.rejects(
      openai.chat.completions.create({
        model: 'gpt-4o',
        messages: [
          { role: 'user', content: 'x' },
          { role: 'assistant', content: null, tool_calls: [{ id: 't1', type: 'function', function: { name: 'f', arguments: '{broken' } }] },
        ],
      }),
      (e: unknown) => e instanceof OpenAI.BadRequestError && e.param === 'messages[1].tool_calls[0].function.arguments',
    );
  });

  it('a mid-stream Anthropic error event makes the OpenAI SDK throw while iterating', async () => {
    claude.script.push({ kind: 'midStreamError', text: 'partial answer', type: 'overloaded_error', message: 'Overloaded mid-stream' });
    const s = await openai.chat.completions.create({ model: 'gpt-4o', messages: [{ role: 'user', content: 'x' }], stream: true });
    let text = '';
    await assert.rejects(
      (async () => {
        for await (const c of s) text += c.choices[0]?.delta?.content ?? '';
      })(),
      (e: unknown) => e instanceof OpenAI.APIError && /Overloaded mid-stream/.test(e.message),
    );
    assert.equal(text, 'partial answer');
  });

  it('an Anthropic stream cut before message_delta does not look complete to an OpenAI client', async () => {
    claude.script.push({ kind: 'cut', text: 'half an answ' });
    const s = await openai.chat.completions.create({ model: 'gpt-4o', messages: [{ role: 'user', content: 'x' }], stream: true });
    let text = '';
    let finish: string | null = null;
    await assert.rejects(async () => {
      for await (const c of s) {
        text += c.choices[0]?.delta?.content ?? '';
        finish ??= c.choices[0]?.finish_reason ?? null;
      }
    });
    assert.equal(text, 'half an answ');
    assert.equal(finish, null);
  });

  it('an Anthropic client passes through to Anthropic and streams tool_use natively', async () => {
    claude.script.push({ text: 'Let me look.', toolUses: [{ name: 'weather', input: { city: 'Oslo' } }] });
    const final = await anthropic.messages
      .stream({ model: 'claude-haiku', max_tokens: 200, messages: [{ role: 'user', content: 'Oslo?' }], tools: [{ name: 'weather', input_schema: { type: 'object', properties: { city: { type: 'string' } } } }] })
      .finalMessage();
    assert.equal(final.stop_reason, 'tool_use');
    const tu = final.content.find((b) => b.type === 'tool_use');
    assert.ok(tu && tu.type === 'tool_use');
    assert.deepEqual(tu.input, { city: 'Oslo' });
    const got = claude.received.at(-1)!;
    assert.equal(got.headers['x-api-key'], 'sk-ant-provider');
    // The Anthropic SDK sends its key as a bearer token: the client's key must not reach the provider.
    assert.equal(got.headers.authorization, undefined);
    claude.script.push({ kind: 'error', status: 529, type: 'overloaded_error', message: 'Overloaded' });
    await assert.rejects(anthropic.messages.create({ model: 'claude-haiku', max_tokens: 10, messages: [{ role: 'user', content: 'x' }] }), (e: unknown) => {
      // Pass-through keeps Anthropic's own status for Anthropic clients.
      assert.ok(e instanceof Anthropic.APIError, String(e));
      assert.equal(e.status, 529);
      assert.equal((e.error as { error?: { type?: string } }).error?.type, 'overloaded_error');
      return true;
    });
  });

  it('an Anthropic client on an OpenAI upstream: streamed tool_use blocks, stop reason and usage', async () => {
    const final = await anthropic.messages
      .stream({
        model: 'tools',
        max_tokens: 200,
        messages: [{ role: 'user', content: 'call a tool' }],
        tools: [{ name: 'lookup', input_schema: { type: 'object', properties: { q: { type: 'string' } } } }],
      })
      .finalMessage();
    assert.equal(final.stop_reason, 'tool_use');
    const tu = final.content.find((b) => b.type === 'tool_use');
    assert.ok(tu && tu.type === 'tool_use', JSON.stringify(final.content));
    assert.equal(typeof tu.input, 'object');
    assert.ok(final.usage.input_tokens > 0 && final.usage.output_tokens > 0, JSON.stringify(final.usage));
    assert.match(final.id, /^msg_/);
    const sent = lab.received.at(-1)!.body!;
    assert.deepEqual(sent.stream_options, { include_usage: true });
    assert.equal(sent.tools[0].type, 'function');
    assert.equal(sent.tools[0].function.name, 'lookup');

    const m = await anthropic.messages.create({ model: 'gpt-x', max_tokens: 30, messages: [{ role: 'user', content: 'plain' }] });
    assert.equal(m.type, 'message');
    assert.equal(m.stop_reason, 'end_turn');
    assert.deepEqual(m.content, [{ type: 'text', text: 'echo: plain' }]);
  });

  it('an OpenAI upstream failing mid-stream or cut off makes the Anthropic SDK throw', async () => {
    for (const model of ['mid-error', 'cut']) {
      await assert.rejects(anthropic.messages.stream({ model, max_tokens: 50, messages: [{ role: 'user', content: 'x' }] }).finalMessage(), (e: unknown) => e instanceof Anthropic.APIError && /api_error/.test(e.message), model);
    }
  });

  it('an Anthropic request that cannot be converted is a 400 in Anthropic shape, and nothing goes upstream', async () => {
    const before = lab.chatCount();
    await assert.rejects(
      anthropic.messages.create({ model: 'gpt-x', max_tokens: 10, messages: [{ role: 'user', content: [{ type: 'image', source: { type: 'url', url: 'file:///etc/passwd' } }] }] }),
      (e: unknown) => {
        assert.ok(e instanceof Anthropic.BadRequestError, String(e));
        assert.equal((e.error as { error?: { type?: string } }).error?.type, 'invalid_request_error');
        return true;
      },
    );
    assert.equal(lab.chatCount(), before);
  });

  it('OpenAI upstream errors reach an Anthropic client as Anthropic SDK errors', async () => {
    await assert.rejects(anthropic.messages.create({ model: 'err-404', max_tokens: 10, messages: [{ role: 'user', content: 'x' }] }), (e: unknown) => {
      assert.ok(e instanceof Anthropic.NotFoundError, String(e));
      assert.equal((e.error as { error?: { type?: string } }).error?.type, 'not_found_error');
      return true;
    });
  });
});
