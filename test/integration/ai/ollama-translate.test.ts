// The real openai SDK through the gateway to Ollama: the native /api/chat
// (NDJSON streams, options, whole tool calls) and, with `api: openai`, its
// OpenAI-compatible /v1/chat/completions.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';
import type { Gateway } from '../../../src/gateway.js';
import { startOllamaDouble, type OllamaDouble } from '../../doubles/llm/ollama.js';
import { startGateway } from '../../helpers/gateway.js';

describe('ai route: OpenAI clients on Ollama', () => {
  let gw: Gateway;
  let ollama: OllamaDouble;
  let openai: OpenAI;

  before(async () => {
    ollama = await startOllamaDouble();
    gw = await startGateway({
      routes: [
        {
          name: 'llm',
          match: { path: { prefix: '/v1/' } },
          ai: {
            providers: [
              { name: 'native', type: 'ollama', baseUrl: ollama.baseUrl },
              { name: 'compat', type: 'ollama', api: 'openai', baseUrl: ollama.baseUrl },
            ],
            models: { 'compat-*': 'compat', '*': 'native' },
          },
        } as never,
      ],
    });
    openai = new OpenAI({ baseURL: `${gw.listenerUrl()}/v1`, apiKey: 'unused', maxRetries: 0 });
  });
  after(async () => {
    await gw?.stop();
    await ollama?.stop();
  });

  it('native: options go under `options` (max tokens as num_predict), images as bare base64, stream:false', async () => {
    ollama.script.push({ text: 'A red square.', usage: { prompt: 33, eval: 5 } });
    const r = await openai.chat.completions.create({
      model: 'llava',
      messages: [{ role: 'user', content: [{ type: 'text', text: 'Describe' }, { type: 'image_url', image_url: { url: 'data:image/png;base64,iVBORw0KGgo=' } }] }],
      max_completion_tokens: 20,
      temperature: 0,
      stop: ['\n'],
    });
    assert.equal(r.choices[0]!.message.content, 'A red square.');
    assert.equal(r.choices[0]!.finish_reason, 'stop');
    assert.deepEqual([r.usage?.prompt_tokens, r.usage?.completion_tokens, r.usage?.total_tokens], [33, 5, 38]);
    const got = ollama.received.at(-1)!;
    assert.equal(got.path, '/api/chat');
    assert.deepEqual(got.body, {
      model: 'llava',
      messages: [{ role: 'user', content: 'Describe', images: ['iVBORw0KGgo='] }],
      stream: false,
      options: { temperature: 0, num_predict: 20, stop: ['\n'] },
    });
  });

  it('native stream (NDJSON) becomes SSE chunks; usage chunk only when asked; done_reason length -> length', async () => {
    const run = async (includeUsage: boolean) => {
      ollama.script.push({ text: 'Tiny steps, many lines of text.', usage: { prompt: 12, eval: 9 }, doneReason: 'length', pauseMs: 3 });
      const s = await openai.chat.completions.create({ model: 'llama3', messages: [{ role: 'user', content: 'go' }], stream: true, ...(includeUsage ? { stream_options: { include_usage: true } } : {}) });
      const chunks: OpenAI.ChatCompletionChunk[] = [];
      for await (const c of s) chunks.push(c);
      return chunks;
    };
    const a = await run(true);
    assert.equal(ollama.received.at(-1)!.body!.stream, true);
    assert.equal(a.map((c) => c.choices[0]?.delta?.content ?? '').join(''), 'Tiny steps, many lines of text.');
    assert.equal(a.find((c) => c.choices[0]?.finish_reason)!.choices[0]!.finish_reason, 'length');
    assert.deepEqual(a.at(-1)!.choices, []);
    assert.deepEqual([a.at(-1)!.usage!.prompt_tokens, a.at(-1)!.usage!.completion_tokens], [12, 9]);
    const b = await run(false);
    assert.ok(b.every((c) => c.choices.length === 1 && !c.usage));
  });

  it('native tool calls (whole, object arguments) assemble in the SDK and go back as objects', async () => {
    ollama.script.push({ toolCalls: [{ name: 'weather', arguments: { city: 'Oslo' } }] });
    const tools: OpenAI.ChatCompletionTool[] = [{ type: 'function', function: { name: 'weather', parameters: { type: 'object', properties: { city: { type: 'string' } } } } }];
    const final = await openai.chat.completions.stream({ model: 'llama3', messages: [{ role: 'user', content: 'Oslo weather?' }], tools }).finalChatCompletion();
    const msg = final.choices[0]!.message;
    assert.equal(final.choices[0]!.finish_reason, 'tool_calls');
    const call = msg.tool_calls![0]!;
    assert.ok(call.type === 'function');
    assert.deepEqual([call.function.name, JSON.parse(call.function.arguments)], ['weather', { city: 'Oslo' }]);

    ollama.script.push({ text: 'Cold.' });
    const r = await openai.chat.completions.create({
      model: 'llama3',
      tools,
      messages: [{ role: 'user', content: 'Oslo weather?' }, msg as OpenAI.ChatCompletionAssistantMessageParam, { role: 'tool', tool_call_id: call.id, content: '-3C' }],
    });
    assert.equal(r.choices[0]!.message.content, 'Cold.');
    const sent = ollama.received.at(-1)!.body!.messages as Array<Record<string, any>>;
    assert.deepEqual(sent[1]!.tool_calls, [{ function: { name: 'weather', arguments: { city: 'Oslo' } } }]);
    assert.deepEqual(sent[2], { role: 'tool', content: '-3C', tool_name: 'weather' });
  });

  it('native errors: unknown model -> NotFoundError; an error line mid-stream -> the SDK throws', async () => {
    await assert.rejects(openai.chat.completions.create({ model: 'missing-model', messages: [{ role: 'user', content: 'x' }] }), (e: unknown) => e instanceof OpenAI.NotFoundError && /not found/.test(e.message));
    ollama.script.push({ kind: 'midStreamError', text: 'partial', message: 'llama runner process has terminated' });
    const s = await openai.chat.completions.create({ model: 'llama3', messages: [{ role: 'user', content: 'x' }], stream: true });
    await assert.rejects(
      (async () => {
        for await (const _ of s);
      })(),
      (e: unknown) => e instanceof OpenAI.APIError && /terminated/.test(e.message),
    );
  });

  it('an Anthropic client reaches native Ollama (Messages -> OpenAI -> /api/chat), tool_use included', async () => {
    const anthropic = new Anthropic({ baseURL: gw.listenerUrl(), apiKey: 'x', maxRetries: 0 });
    ollama.script.push({ text: 'Looking up.', toolCalls: [{ name: 'weather', arguments: { city: 'Bergen' } }], usage: { prompt: 21, eval: 8 } });
    const final = await anthropic.messages
      .stream({ model: 'llama3', max_tokens: 64, system: 'terse', messages: [{ role: 'user', content: 'Bergen?' }], tools: [{ name: 'weather', input_schema: { type: 'object', properties: { city: { type: 'string' } } } }] })
      .finalMessage();
    assert.equal(final.stop_reason, 'tool_use');
    assert.deepEqual(
      final.content.map((b) => (b.type === 'text' ? b.text : b.type === 'tool_use' ? b.input : b.type)),
      ['Looking up.', { city: 'Bergen' }],
    );
    assert.deepEqual([final.usage.input_tokens, final.usage.output_tokens], [21, 8]);
    const sent = ollama.received.at(-1)!.body!;
    assert.deepEqual(sent.messages[0], { role: 'system', content: 'terse' });
    assert.deepEqual(sent.options, { num_predict: 64 });
  });

  it('api: openai uses /v1/chat/completions as is', async () => {
    ollama.script.push({ text: 'compat answer', usage: { prompt: 4, eval: 2 } });
    const s = await openai.chat.completions.create({ model: 'compat-llama', messages: [{ role: 'user', content: 'x' }], stream: true, stream_options: { include_usage: true } });
    let text = '';
    let usage: OpenAI.CompletionUsage | undefined;
    for await (const c of s) {
      text += c.choices[0]?.delta?.content ?? '';
      if (c.usage) usage = c.usage;
    }
    assert.equal(text, 'compat answer');
    assert.deepEqual([usage?.prompt_tokens, usage?.completion_tokens], [4, 2]);
    assert.equal(ollama.received.at(-1)!.path, '/v1/chat/completions');
  });
});
