// Anthropic clients (POST /v1/messages) on a provider that speaks OpenAI chat.
// The event order checked here is the one @anthropic-ai/sdk's MessageStream
// requires: message_start first, content_block_start pushes a block at the
// next index, deltas address blocks by index, message_delta, message_stop.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  OpenAIToMessagesStream,
  messagesToOpenAI,
  openAIErrorToAnthropic,
  openAIToMessage,
} from '../../../src/upstreams/ai/translate/messages-inbound.js';
import { TranslationError } from '../../../src/upstreams/ai/translate/common.js';
import type { Json } from '../../../src/upstreams/ai/translate/types.js';

const chunk = (delta: Json, finish: string | null = null, extra: Json = {}): Json => ({
  id: 'chatcmpl-abc',
  object: 'chat.completion.chunk',
  created: 1,
  model: 'gpt-x',
  choices: [{ index: 0, delta, finish_reason: finish }],
  ...extra,
});
const usageChunk = (u: Json): Json => ({ id: 'chatcmpl-abc', object: 'chat.completion.chunk', created: 1, model: 'gpt-x', choices: [], usage: u });

function run(chunks: Json[]): Array<{ event: string; data: Json }> {
  const s = new OpenAIToMessagesStream({ model: 'claude-sonnet' });
  const out = chunks.flatMap((c) => s.push(c));
  out.push(...s.end());
  for (const e of out) assert.equal(e.data.type, e.event, 'each data carries its event name as type');
  return out;
}

/** Rebuilds the message the way the Anthropic SDK's MessageStream accumulates it. */
function accumulate(events: Array<{ event: string; data: Json }>): Json {
  let msg: Json | undefined;
  for (const { data: e } of events) {
    if (e.type === 'message_start') {
      assert.equal(msg, undefined, 'one message_start');
      msg = structuredClone(e.message as Json);
      continue;
    }
    assert.ok(msg, `${String(e.type)} before message_start`);
    const content = msg.content as Json[];
    if (e.type === 'content_block_start') {
      assert.equal(e.index, content.length, 'blocks start at the next index');
      content.push({ ...(e.content_block as Json), _json: '' });
    } else if (e.type === 'content_block_delta') {
      const b = content[e.index as number]!;
      const d = e.delta as Json;
      if (d.type === 'text_delta') b.text = (b.text as string) + (d.text as string);
      else if (d.type === 'input_json_delta') b._json = (b._json as string) + (d.partial_json as string);
    } else if (e.type === 'message_delta') {
      msg.stop_reason = (e.delta as Json).stop_reason;
      msg.usage = { ...(msg.usage as Json), ...(e.usage as Json) };
    }
  }
  for (const b of (msg!.content as Json[])) {
    if (b.type === 'tool_use') b.input = JSON.parse((b._json as string) || '{}');
    delete b._json;
  }
  return msg!;
}

describe('messages-inbound: request', () => {
  it('system, text, images, tool_use and tool_result become OpenAI messages in the order OpenAI wants', () => {
    const r = messagesToOpenAI({
      model: 'claude-x',
      max_tokens: 1024,
      system: [{ type: 'text', text: 'Be brief.' }, { type: 'text', text: 'Be kind.' }],
      messages: [
        { role: 'user', content: [{ type: 'text', text: 'Weather? ' }, { type: 'image', source: { type: 'base64', media_type: 'image/png', data: 'AAA' } }] },
        { role: 'assistant', content: [{ type: 'text', text: 'Checking.' }, { type: 'tool_use', id: 'toolu_1', name: 'weather', input: { city: 'Paris' } }] },
        { role: 'user', content: [{ type: 'tool_result', tool_use_id: 'toolu_1', content: [{ type: 'text', text: '18C' }] }, { type: 'text', text: 'And tomorrow?' }] },
      ],
      stop_sequences: ['\n\nHuman:'],
      temperature: 0.3,
      top_k: 5,
      tools: [{ name: 'weather', description: 'Get weather', input_schema: { type: 'object', properties: { city: { type: 'string' } } } }],
      tool_choice: { type: 'any', disable_parallel_tool_use: true },
      metadata: { user_id: 'u-1' },
      stream: true,
    });
    assert.deepEqual(r, {
      model: 'claude-x',
      messages: [
        { role: 'system', content: 'Be brief.\n\nBe kind.' },
        { role: 'user', content: [{ type: 'text', text: 'Weather? ' }, { type: 'image_url', image_url: { url: 'data:image/png;base64,AAA' } }] },
        { role: 'assistant', content: 'Checking.', tool_calls: [{ id: 'toolu_1', type: 'function', function: { name: 'weather', arguments: '{"city":"Paris"}' } }] },
        { role: 'tool', tool_call_id: 'toolu_1', content: '18C' },
        { role: 'user', content: 'And tomorrow?' },
      ],
      max_tokens: 1024,
      stop: ['\n\nHuman:'],
      temperature: 0.3,
      user: 'u-1',
      tools: [{ type: 'function', function: { name: 'weather', parameters: { type: 'object', properties: { city: { type: 'string' } } }, description: 'Get weather' } }],
      tool_choice: 'required',
      parallel_tool_calls: false,
      stream: true,
      // The usage chunk is needed to fill message_delta.
      stream_options: { include_usage: true },
    });
  });

  it('tool_choice auto/none/tool map back; a string content stays a string', () => {
    const base = { model: 'm', max_tokens: 5, messages: [{ role: 'user', content: 'hi' }], tools: [{ name: 'f', input_schema: { type: 'object' } }] };
    assert.equal(messagesToOpenAI({ ...base, tool_choice: { type: 'auto' } }).tool_choice, 'auto');
    assert.equal(messagesToOpenAI({ ...base, tool_choice: { type: 'none' } }).tool_choice, 'none');
    assert.deepEqual(messagesToOpenAI({ ...base, tool_choice: { type: 'tool', name: 'f' } }).tool_choice, { type: 'function', function: { name: 'f' } });
    assert.deepEqual(messagesToOpenAI(base).messages, [{ role: 'user', content: 'hi' }]);
    assert.equal(messagesToOpenAI(base).stream, undefined);
  });

  it('refuses a role it cannot map and server tools, naming the field', () => {
    assert.throws(() => messagesToOpenAI({ messages: [{ role: 'system', content: 'x' }] }), (e: unknown) => e instanceof TranslationError && e.body.error.param === 'messages[0].role');
    assert.throws(() => messagesToOpenAI({ messages: [], tools: [{ type: 'web_search_20250305', name: 'web_search' }] }), TranslationError);
    // Only http(s) image URLs are passed on (a provider that fetches must not be handed file: or gopher: URLs).
    for (const url of ['file:///etc/passwd', 'gopher://127.0.0.1:6379/_INFO', 'ftp://x/y.png']) {
      assert.throws(
        () => messagesToOpenAI({ messages: [{ role: 'user', content: [{ type: 'image', source: { type: 'url', url } }] }] }),
        (e: unknown) => e instanceof TranslationError && e.body.error.param === 'messages[0].content[0]',
        url,
      );
    }
    assert.deepEqual(
      (messagesToOpenAI({ messages: [{ role: 'user', content: [{ type: 'image', source: { type: 'url', url: 'https://example.com/a.png' } }] }] }).messages as Json[])[0]!.content,
      [{ type: 'image_url', image_url: { url: 'https://example.com/a.png' } }],
    );
  });
});

describe('messages-inbound: response', () => {
  it('a completion becomes a message: msg_ id, text and tool_use blocks with parsed input, stop reason and usage', () => {
    const m = openAIToMessage(
      {
        id: 'chatcmpl-xyz',
        object: 'chat.completion',
        choices: [
          {
            index: 0,
            message: { role: 'assistant', content: 'Sure.', tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'weather', arguments: '{"city":"Rome"}' } }] },
            finish_reason: 'tool_calls',
          },
        ],
        usage: { prompt_tokens: 120, completion_tokens: 30, total_tokens: 150, prompt_tokens_details: { cached_tokens: 100 } },
      },
      'claude-sonnet',
    );
    assert.deepEqual(m, {
      id: 'msg_xyz',
      type: 'message',
      role: 'assistant',
      model: 'claude-sonnet',
      content: [
        { type: 'text', text: 'Sure.' },
        { type: 'tool_use', id: 'call_1', name: 'weather', input: { city: 'Rome' } },
      ],
      stop_reason: 'tool_use',
      stop_sequence: null,
      usage: { input_tokens: 20, output_tokens: 30, cache_creation_input_tokens: 0, cache_read_input_tokens: 100 },
    });
  });

  it('finish reasons reverse: stop->end_turn, length->max_tokens, content_filter->refusal', () => {
    const reason = (f: string) => openAIToMessage({ id: 'x', choices: [{ index: 0, message: { content: 'a' }, finish_reason: f }] }, 'm').stop_reason;
    assert.equal(reason('stop'), 'end_turn');
    assert.equal(reason('length'), 'max_tokens');
    assert.equal(reason('tool_calls'), 'tool_use');
    assert.equal(reason('content_filter'), 'refusal');
  });
});

describe('messages-inbound: stream', () => {
  it('text then two tool calls: exact event order, block indexes, stop_reason held for the usage chunk', () => {
    const events = run([
      chunk({ role: 'assistant', content: '' }),
      chunk({ content: 'Let me ' }),
      chunk({ content: 'check.' }),
      chunk({ tool_calls: [{ index: 0, id: 'call_a', type: 'function', function: { name: 'weather', arguments: '' } }] }),
      chunk({ tool_calls: [{ index: 0, function: { arguments: '{"city":' } }] }),
      chunk({ tool_calls: [{ index: 0, function: { arguments: '"Paris"}' } }] }),
      chunk({ tool_calls: [{ index: 1, id: 'call_b', type: 'function', function: { name: 'time', arguments: '{}' } }] }),
      chunk({}, 'tool_calls'),
      usageChunk({ prompt_tokens: 50, completion_tokens: 20, total_tokens: 70 }),
    ]);
    assert.deepEqual(
      events.map((e) => e.event + ('index' in e.data ? `:${String(e.data.index)}` : '')),
      [
        'message_start',
        'content_block_start:0',
        'content_block_delta:0',
        'content_block_delta:0',
        'content_block_stop:0',
        'content_block_start:1',
        'content_block_delta:1',
        'content_block_delta:1',
        'content_block_stop:1',
        'content_block_start:2',
        'content_block_delta:2',
        'content_block_stop:2',
        'message_delta',
        'message_stop',
      ],
    );
    const md = events.find((e) => e.event === 'message_delta')!.data;
    assert.deepEqual(md, {
      type: 'message_delta',
      delta: { stop_reason: 'tool_use', stop_sequence: null },
      usage: { input_tokens: 50, output_tokens: 20, cache_creation_input_tokens: 0, cache_read_input_tokens: 0 },
    });
    const msg = accumulate(events);
    assert.match(msg.id as string, /^msg_/);
    assert.equal(msg.model, 'claude-sonnet');
    assert.deepEqual(msg.content, [
      { type: 'text', text: 'Let me check.' },
      { type: 'tool_use', id: 'call_a', name: 'weather', input: { city: 'Paris' } },
      { type: 'tool_use', id: 'call_b', name: 'time', input: {} },
    ]);
    assert.equal(msg.stop_reason, 'tool_use');
  });

  it('message_delta waits for the usage chunk after finish_reason', () => {
    const s = new OpenAIToMessagesStream({ model: 'm' });
    s.push(chunk({ role: 'assistant', content: 'hi' }));
    const atFinish = s.push(chunk({}, 'stop'));
    assert.deepEqual(
      atFinish.map((e) => e.event),
      ['content_block_stop'],
    );
    const atUsage = s.push(usageChunk({ prompt_tokens: 3, completion_tokens: 1, total_tokens: 4 }));
    assert.deepEqual(
      atUsage.map((e) => e.event),
      ['message_delta', 'message_stop'],
    );
    assert.equal((atUsage[0]!.data.delta as Json).stop_reason, 'end_turn');
    assert.deepEqual(s.end(), []);
  });

  it('no usage chunk (provider ignored include_usage): message_delta comes at the end with zero usage', () => {
    const events = run([chunk({ role: 'assistant', content: 'x' }), chunk({}, 'length')]);
    const md = events.find((e) => e.event === 'message_delta')!.data;
    assert.equal((md.delta as Json).stop_reason, 'max_tokens');
    assert.equal(events[events.length - 1]!.event, 'message_stop');
  });

  it('usage inside the finish choice (Moonshot style) is used', () => {
    const events = run([chunk({ role: 'assistant', content: 'x' }), { ...chunk({}, 'stop'), choices: [{ index: 0, delta: {}, finish_reason: 'stop', usage: { prompt_tokens: 7, completion_tokens: 2 } }] }]);
    const md = events.find((e) => e.event === 'message_delta')!.data;
    assert.equal((md.usage as Json).input_tokens, 7);
    assert.equal((md.usage as Json).output_tokens, 2);
  });

  it('an error object mid-stream becomes an error event and nothing follows it', () => {
    const events = run([chunk({ role: 'assistant', content: 'x' }), { error: { message: 'Rate limit reached', type: 'rate_limit_error', param: null, code: 'rate_limit_exceeded' } }, chunk({}, 'stop')]);
    assert.deepEqual(events[events.length - 1], { event: 'error', data: { type: 'error', error: { type: 'rate_limit_error', message: 'Rate limit reached' } } });
    assert.equal(events.filter((e) => e.event === 'message_stop').length, 0);
  });

  it('a stream cut before finish_reason ends with an error event', () => {
    const events = run([chunk({ role: 'assistant', content: 'half' })]);
    assert.equal(events[events.length - 1]!.event, 'error');
    assert.equal((events[events.length - 1]!.data.error as Json).type, 'api_error');
  });
});

describe('messages-inbound: errors', () => {
  it('maps OpenAI errors to Anthropic error types by status and code', () => {
    const e = (status: number, type: string, code: string | null = null) => (openAIErrorToAnthropic(status, { error: { message: 'm', type, param: null, code } }).error as Json).type;
    assert.deepEqual(openAIErrorToAnthropic(400, { error: { message: 'bad', type: 'invalid_request_error', param: null, code: null } }), { type: 'error', error: { type: 'invalid_request_error', message: 'bad' } });
    assert.equal(e(401, 'invalid_request_error', 'invalid_api_key'), 'authentication_error');
    assert.equal(e(403, 'permission_error'), 'permission_error');
    assert.equal(e(404, 'invalid_request_error', 'model_not_found'), 'not_found_error');
    assert.equal(e(429, 'insufficient_quota', 'insufficient_quota'), 'billing_error');
    assert.equal(e(429, 'rate_limit_error', 'rate_limit_exceeded'), 'rate_limit_error');
    assert.equal(e(500, 'server_error'), 'api_error');
    assert.equal(e(503, 'server_error'), 'overloaded_error');
    assert.equal(e(504, 'server_error'), 'timeout_error');
  });
});
