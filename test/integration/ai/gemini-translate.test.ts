// The real openai SDK (and @anthropic-ai/sdk) through the gateway to a Gemini
// upstream (the gemini double: CRLF SSE frames, no [DONE], whole function
// calls, strict request parsing, Google's error shape).
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';
import type { Gateway } from '../../../src/gateway.js';
import { startGeminiDouble, type GeminiDouble } from '../../doubles/llm/gemini.js';
import { startGateway } from '../../helpers/gateway.js';

const TOOLS: OpenAI.ChatCompletionTool[] = [
  { type: 'function', function: { name: 'weather', parameters: { type: 'object', additionalProperties: false, properties: { city: { type: 'string' } } } } },
  { type: 'function', function: { name: 'time', parameters: { type: 'object', properties: {} } } },
];

describe('ai route: OpenAI clients on a Gemini upstream', () => {
  let gw: Gateway;
  let gem: GeminiDouble;
  let openai: OpenAI;

  before(async () => {
    gem = await startGeminiDouble({ keys: ['AIza-provider'] });
    gw = await startGateway({
      routes: [
        {
          name: 'llm',
          match: { path: { prefix: '/v1/' } },
          ai: {
            providers: [{ name: 'gemini', type: 'gemini', baseUrl: gem.baseUrl, apiKeys: ['AIza-provider'], modelMapping: { 'gpt-4o': 'gemini-2.0-flash' } }],
          },
        } as never,
      ],
    });
    openai = new OpenAI({ baseURL: `${gw.listenerUrl()}/v1`, apiKey: 'client-key', maxRetries: 0 });
  });
  after(async () => {
    await gw?.stop();
    await gem?.stop();
  });

  it('a chat completion goes to :generateContent with the key header and a camelCase request', async () => {
    gem.script.push({ text: 'Hi there.', usage: { prompt: 11, candidates: 3, thoughts: 2 } });
    const r = await openai.chat.completions.create({
      model: 'gpt-4o',
      messages: [
        { role: 'system', content: 'Be short.' },
        { role: 'user', content: 'Hello' },
      ],
      max_completion_tokens: 64,
      temperature: 0.3,
    });
    assert.equal(r.choices[0]!.message.content, 'Hi there.');
    assert.equal(r.choices[0]!.finish_reason, 'stop');
    assert.equal(r.usage?.prompt_tokens, 11);
    assert.equal(r.usage?.completion_tokens, 5, 'thought tokens are output tokens');
    const got = gem.received.at(-1)!;
    assert.equal(got.path, '/v1beta/models/gemini-2.0-flash:generateContent');
    assert.equal(got.headers['x-goog-api-key'], 'AIza-provider');
    assert.equal(got.headers.authorization, undefined);
    assert.deepEqual(got.body, {
      contents: [{ role: 'user', parts: [{ text: 'Hello' }] }],
      systemInstruction: { parts: [{ text: 'Be short.' }] },
      generationConfig: { temperature: 0.3, maxOutputTokens: 64 },
    });
  });

  it('a stream (CRLF frames, no [DONE]) arrives whole, with the usage chunk only when asked', async () => {
    const run = async (includeUsage: boolean) => {
      gem.script.push({ text: 'The quick brown fox jumps.', usage: { prompt: 8, candidates: 6 }, pauseMs: 5 });
      const s = await openai.chat.completions.create({
        model: 'gpt-4o',
        messages: [{ role: 'user', content: 'fox' }],
        stream: true,
        ...(includeUsage ? { stream_options: { include_usage: true } } : {}),
      });
      const chunks: OpenAI.ChatCompletionChunk[] = [];
      for await (const c of s) chunks.push(c);
      return chunks;
    };
    const a = await run(true);
    assert.equal(gem.received.at(-1)!.url, '/v1beta/models/gemini-2.0-flash:streamGenerateContent?alt=sse');
    assert.equal(a.map((c) => c.choices[0]?.delta?.content ?? '').join(''), 'The quick brown fox jumps.');
    assert.deepEqual(a.at(-1)!.choices, []);
    assert.deepEqual([a.at(-1)!.usage!.prompt_tokens, a.at(-1)!.usage!.completion_tokens], [8, 6]);
    assert.equal(a.filter((c) => c.choices[0]?.finish_reason).map((c) => c.choices[0]!.finish_reason).join(), 'stop');
    const b = await run(false);
    assert.ok(b.every((c) => c.choices.length === 1 && !c.usage));
  });

  it('function calls stream as tool calls; the results go back as functionResponse parts Gemini accepts', async () => {
    gem.script.push({ functionCalls: [{ name: 'weather', args: { city: 'Paris' } }, { name: 'time', args: {} }] });
    const final = await openai.chat.completions.stream({ model: 'gpt-4o', messages: [{ role: 'user', content: 'Weather and time in Paris?' }], tools: TOOLS }).finalChatCompletion();
    const msg = final.choices[0]!.message;
    assert.equal(final.choices[0]!.finish_reason, 'tool_calls');
    const calls = msg.tool_calls!.filter((c) => c.type === 'function');
    assert.deepEqual(
      calls.map((c) => [c.function.name, JSON.parse(c.function.arguments)]),
      [
        ['weather', { city: 'Paris' }],
        ['time', {}],
      ],
    );
    assert.equal(new Set(calls.map((c) => c.id)).size, 2, 'distinct ids');
    // additionalProperties (which Gemini's schema rejects) was dropped from the declaration.
    const decl = (gem.received.at(-1)!.body!.tools as Array<{ functionDeclarations: Array<{ parameters: Record<string, unknown> }> }>)[0]!.functionDeclarations[0]!;
    assert.equal('additionalProperties' in decl.parameters, false);

    gem.script.push({ text: 'Sunny, noon.' });
    const r = await openai.chat.completions.create({
      model: 'gpt-4o',
      tools: TOOLS,
      messages: [
        { role: 'user', content: 'Weather and time in Paris?' },
        msg as OpenAI.ChatCompletionAssistantMessageParam,
        { role: 'tool', tool_call_id: calls[1]!.id, content: '12:00' },
        { role: 'tool', tool_call_id: calls[0]!.id, content: '{"sky":"sunny"}' },
      ],
    });
    assert.equal(r.choices[0]!.message.content, 'Sunny, noon.');
    const contents = gem.received.at(-1)!.body!.contents as Array<{ role: string; parts: Array<Record<string, any>> }>;
    assert.deepEqual(contents[2], {
      role: 'user',
      parts: [{ functionResponse: { name: 'time', response: { content: '12:00' } } }, { functionResponse: { name: 'weather', response: { sky: 'sunny' } } }],
    });
  });

  it('a thinking model signs its function call; the signature comes back through the tool call id', async () => {
    gem.script.push({ functionCalls: [{ name: 'weather', args: { city: 'Lima' } }] });
    const final = await openai.chat.completions.stream({ model: 'thinking-pro', messages: [{ role: 'user', content: 'Lima?' }], tools: TOOLS }).finalChatCompletion();
    const msg = final.choices[0]!.message;
    gem.script.push({ text: 'Mild.' });
    const r = await openai.chat.completions.create({
      model: 'thinking-pro',
      tools: TOOLS,
      messages: [{ role: 'user', content: 'Lima?' }, msg as OpenAI.ChatCompletionAssistantMessageParam, { role: 'tool', tool_call_id: msg.tool_calls![0]!.id, content: '19C' }],
    });
    // The double answers 400 (as Gemini 3 does) when the signature is missing.
    assert.equal(r.choices[0]!.message.content, 'Mild.');
    // And without it, that 400 is what the client would see.
    await assert.rejects(
      openai.chat.completions.create({
        model: 'thinking-pro',
        messages: [
          { role: 'user', content: 'Lima?' },
          { role: 'assistant', content: null, tool_calls: [{ id: 'call_plain', type: 'function', function: { name: 'weather', arguments: '{"city":"Lima"}' } }] },
          { role: 'tool', tool_call_id: 'call_plain', content: '19C' },
        ],
      }),
      (e: unknown) => e instanceof OpenAI.BadRequestError && /thought_signature/.test(e.message),
    );
  });

  it('a hostile model name stays one path segment upstream', async () => {
    gem.script.push({ text: 'ok' });
    const before = gem.received.length;
    const r = await openai.chat.completions.create({ model: '../../v1/files?key=x', messages: [{ role: 'user', content: 'x' }] });
    assert.equal(r.choices[0]!.message.content, 'ok');
    assert.equal(gem.received.length, before + 1);
    const got = gem.received.at(-1)!;
    assert.equal(decodeURIComponent(got.path), '/v1beta/models/../../v1/files?key=x:generateContent');
    assert.match(got.path, /^\/v1beta\/models\/[^/]+:generateContent$/);
    assert.equal(got.query.get('key'), null);
  });

  it('Google errors become OpenAI SDK errors', async () => {
    gem.script.push({ kind: 'error', status: 429, rpcStatus: 'RESOURCE_EXHAUSTED', message: 'Resource has been exhausted (e.g. check quota).' });
    await assert.rejects(openai.chat.completions.create({ model: 'gpt-4o', messages: [{ role: 'user', content: 'x' }] }), (e: unknown) => e instanceof OpenAI.RateLimitError && /exhausted/.test(e.message));
    await assert.rejects(openai.chat.completions.create({ model: 'missing-model', messages: [{ role: 'user', content: 'x' }] }), (e: unknown) => e instanceof OpenAI.NotFoundError && e.code === 'model_not_found');
    gem.script.push({ kind: 'error', status: 400, rpcStatus: 'INVALID_ARGUMENT', message: 'Request contains an invalid argument.' });
    await assert.rejects(openai.chat.completions.create({ model: 'gpt-4o', messages: [{ role: 'user', content: 'x' }] }), (e: unknown) => e instanceof OpenAI.BadRequestError);
    // Images by URL cannot be sent to Gemini: refused by the gateway, naming the field, without an upstream call.
    const before = gem.generateCount();
    await assert.rejects(
      openai.chat.completions.create({ model: 'gpt-4o', messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url: 'https://example.com/x.png' } }] }] }),
      (e: unknown) => e instanceof OpenAI.BadRequestError && e.param === 'messages[0].content[0]',
    );
    assert.equal(gem.generateCount(), before);
  });

  it('a mid-stream error frame makes the SDK throw; a cut stream does not look complete', async () => {
    gem.script.push({ kind: 'midStreamError', text: 'some text', status: 503, rpcStatus: 'UNAVAILABLE', message: 'The model is overloaded.' });
    const s = await openai.chat.completions.create({ model: 'gpt-4o', messages: [{ role: 'user', content: 'x' }], stream: true });
    await assert.rejects(
      (async () => {
        for await (const _ of s);
      })(),
      (e: unknown) => e instanceof OpenAI.APIError && /overloaded/.test(e.message),
    );
    gem.script.push({ kind: 'cut', text: 'cut off here' });
    let finish: string | null | undefined;
    const s2 = await openai.chat.completions.create({ model: 'gpt-4o', messages: [{ role: 'user', content: 'x' }], stream: true });
    await assert.rejects(
      (async () => {
        for await (const c of s2) finish ??= c.choices[0]?.finish_reason;
      })(),
    );
    assert.equal(finish ?? null, null, 'no finish_reason for a cut stream');
  });

  it('an Anthropic client reaches Gemini too (Messages -> OpenAI -> Gemini)', async () => {
    const anthropic = new Anthropic({ baseURL: gw.listenerUrl(), apiKey: 'x', maxRetries: 0 });
    gem.script.push({ text: 'Hallo from Gemini', usage: { prompt: 9, candidates: 4 } });
    const final = await anthropic.messages.stream({ model: 'gpt-4o', max_tokens: 50, messages: [{ role: 'user', content: 'hi' }] }).finalMessage();
    assert.equal((final.content[0] as { text: string }).text, 'Hallo from Gemini');
    assert.equal(final.stop_reason, 'end_turn');
    assert.deepEqual([final.usage.input_tokens, final.usage.output_tokens], [9, 4]);
  });
});
