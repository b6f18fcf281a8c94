// OpenAI chat <-> Anthropic Messages, against wire samples written from the
// Anthropic streaming docs and @anthropic-ai/sdk's types (RawMessageStreamEvent,
// MessageDeltaUsage: "cumulative"). Streams are fed cut at every byte.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { anthropicTranslator as t } from '../../../src/upstreams/ai/translate/anthropic.js';
import { TranslationError } from '../../../src/upstreams/ai/translate/common.js';
import type { Json } from '../../../src/upstreams/ai/translate/types.js';

const OPTS = { id: 'chatcmpl-1', model: 'claude-x', created: 1700000000, includeUsage: true };

function sse(events: Array<[string, Json]>, eol = '\n'): string {
  return events.map(([e, d]) => `event: ${e}${eol}data: ${JSON.stringify(d)}${eol}${eol}`).join('');
}

/** Runs a stream through a fresh decoder cut at every byte; asserts all cuts agree and returns the chunks. */
function decodeEveryCut(wire: string, opts = OPTS): { chunks: Json[]; usage: unknown } {
  const buf = Buffer.from(wire);
  const run = (cuts: number[]) => {
    const d = t.stream(opts);
    const out: Json[] = [];
    let at = 0;
    for (const c of [...cuts, buf.length]) {
      out.push(...d.push(buf.subarray(at, c)));
      at = c;
    }
    out.push(...d.end());
    return { chunks: out, usage: d.usage };
  };
  const whole = run([]);
  for (let i = 1; i < buf.length; i++) assert.deepEqual(run([i]), whole, `cut at ${i}`);
  return whole;
}

/** What an OpenAI client assembles from the chunks (the SDK's finalChatCompletion does the same). */
function assemble(chunks: Json[]): { content: string; role?: string; tools: Array<{ id?: string; name?: string; args: string }>; finish: unknown[]; usage: unknown[] } {
  let content = '';
  let role: string | undefined;
  const tools: Array<{ id?: string; name?: string; args: string }> = [];
  const finish: unknown[] = [];
  const usage: unknown[] = [];
  for (const c of chunks) {
    if (c.usage) usage.push(c.usage);
    for (const ch of (c.choices as Json[]) ?? []) {
      assert.equal(ch.index, 0);
      const d = ch.delta as Json;
      if (d.role) role = d.role as string;
      if (typeof d.content === 'string') content += d.content;
      for (const tc of (d.tool_calls as Json[]) ?? []) {
        const i = tc.index as number;
        tools[i] ??= { args: '' };
        const fn = tc.function as Json;
        if (tc.id) tools[i]!.id = tc.id as string;
        if (fn.name) tools[i]!.name = fn.name as string;
        tools[i]!.args += (fn.arguments as string) ?? '';
      }
      if (ch.finish_reason !== null) finish.push(ch.finish_reason);
    }
  }
  return { content, role, tools, finish, usage };
}

const msgStart = (usage: Json = { input_tokens: 25, output_tokens: 1 }): [string, Json] => [
  'message_start',
  { type: 'message_start', message: { id: 'msg_01', type: 'message', role: 'assistant', content: [], model: 'claude-x', stop_reason: null, stop_sequence: null, usage } },
];

describe('anthropic: request', () => {
  it('moves system and developer turns to top-level system and applies the max_tokens rule', () => {
    const r = t.request(
      {
        model: 'ignored',
        messages: [
          { role: 'system', content: 'Be brief.' },
          { role: 'developer', content: [{ type: 'text', text: 'Use metric units.' }] },
          { role: 'user', content: 'hi' },
        ],
        max_tokens: 100,
        max_completion_tokens: 50,
        stop: 'END',
        temperature: 0.2,
        top_p: 0.9,
      },
      'claude-sonnet',
      false,
    );
    assert.equal(r.path, '/v1/messages');
    assert.equal(r.stream, false);
    assert.equal(r.headers?.['anthropic-version'], '2023-06-01');
    assert.deepEqual(r.body, {
      model: 'claude-sonnet',
      max_tokens: 50,
      messages: [{ role: 'user', content: [{ type: 'text', text: 'hi' }] }],
      system: 'Be brief.\n\nUse metric units.',
      stop_sequences: ['END'],
      temperature: 0.2,
      top_p: 0.9,
    });
  });

  it('max_tokens: deprecated max_tokens when alone, 4096 when neither is set', () => {
    assert.equal(t.request({ messages: [{ role: 'user', content: 'x' }], max_tokens: 77 }, 'm', false).body.max_tokens, 77);
    assert.equal(t.request({ messages: [{ role: 'user', content: 'x' }] }, 'm', true).body.max_tokens, 4096);
    assert.equal(t.request({ messages: [{ role: 'user', content: 'x' }] }, 'm', true).body.stream, true);
  });

  it('translates a tool conversation: tool_calls -> tool_use, consecutive tool results merged into one user turn', () => {
    const r = t.request(
      {
        messages: [
          { role: 'user', content: 'Weather in Paris and Rome?' },
          {
            role: 'assistant',
            content: null,
            tool_calls: [
              { id: 'toolu_a', type: 'function', function: { name: 'weather', arguments: '{"city":"Paris"}' } },
              { id: 'toolu_b', type: 'function', function: { name: 'weather', arguments: '{"city":"Rome"}' } },
            ],
          },
          { role: 'tool', tool_call_id: 'toolu_a', content: '18C' },
          { role: 'tool', tool_call_id: 'toolu_b', content: [{ type: 'text', text: '24C' }] },
          { role: 'user', content: 'Thanks, which is warmer?' },
        ],
        tools: [{ type: 'function', function: { name: 'weather', description: 'Get weather', parameters: { type: 'object', properties: { city: { type: 'string' } } } } }],
        tool_choice: 'required',
        parallel_tool_calls: false,
      },
      'm',
      false,
    );
    assert.deepEqual(r.body.messages, [
      { role: 'user', content: [{ type: 'text', text: 'Weather in Paris and Rome?' }] },
      {
        role: 'assistant',
        content: [
          { type: 'tool_use', id: 'toolu_a', name: 'weather', input: { city: 'Paris' } },
          { type: 'tool_use', id: 'toolu_b', name: 'weather', input: { city: 'Rome' } },
        ],
      },
      {
        role: 'user',
        content: [
          { type: 'tool_result', tool_use_id: 'toolu_a', content: '18C' },
          { type: 'tool_result', tool_use_id: 'toolu_b', content: [{ type: 'text', text: '24C' }] },
          { type: 'text', text: 'Thanks, which is warmer?' },
        ],
      },
    ]);
    assert.deepEqual(r.body.tools, [{ name: 'weather', description: 'Get weather', input_schema: { type: 'object', properties: { city: { type: 'string' } } } }]);
    assert.deepEqual(r.body.tool_choice, { type: 'any', disable_parallel_tool_use: true });
  });

  it('maps tool_choice auto, none and a named function', () => {
    const base = { messages: [{ role: 'user', content: 'x' }], tools: [{ type: 'function', function: { name: 'f' } }] };
    assert.deepEqual(t.request({ ...base, tool_choice: 'auto' }, 'm', false).body.tool_choice, { type: 'auto' });
    assert.deepEqual(t.request({ ...base, tool_choice: 'none' }, 'm', false).body.tool_choice, { type: 'none' });
    assert.deepEqual(t.request({ ...base, tool_choice: { type: 'function', function: { name: 'f' } } }, 'm', false).body.tool_choice, { type: 'tool', name: 'f' });
    // No tools: no tool_choice (Anthropic refuses one without tools).
    assert.equal(t.request({ messages: [{ role: 'user', content: 'x' }], tool_choice: 'none' }, 'm', false).body.tool_choice, undefined);
    // A tool without parameters still gets the object schema Anthropic requires.
    assert.deepEqual((t.request(base, 'm', false).body.tools as Json[])[0], { name: 'f', input_schema: { type: 'object', properties: {} } });
  });

  it('turns data: URL images into base64 sources and http URLs into url sources', () => {
    const r = t.request(
      {
        messages: [
          {
            role: 'user',
            content: [
              { type: 'text', text: 'What is this?' },
              { type: 'image_url', image_url: { url: 'data:image/png;base64,iVBORw0KGgo=' } },
              { type: 'image_url', image_url: { url: 'https://example.com/cat.jpg', detail: 'high' } },
              { type: 'image_url', image_url: { url: 'data:image/jpg;base64,/9j/' } },
            ],
          },
        ],
      },
      'm',
      false,
    );
    assert.deepEqual((r.body.messages as Json[])[0]!.content, [
      { type: 'text', text: 'What is this?' },
      { type: 'image', source: { type: 'base64', media_type: 'image/png', data: 'iVBORw0KGgo=' } },
      { type: 'image', source: { type: 'url', url: 'https://example.com/cat.jpg' } },
      { type: 'image', source: { type: 'base64', media_type: 'image/jpeg', data: '/9j/' } },
    ]);
  });

  it('refuses what Anthropic cannot be asked, naming the field', () => {
    const bad = (body: Json, param: string) =>
      assert.throws(() => t.request(body, 'm', false), (e: unknown) => e instanceof TranslationError && e.status === 400 && e.body.error.param === param);
    bad({ messages: [{ role: 'assistant', content: null, tool_calls: [{ id: 'x', type: 'function', function: { name: 'f', arguments: '{not json' } }] }] }, 'messages[0].tool_calls[0].function.arguments');
    bad({ messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url: 'file:///etc/passwd' } }] }] }, 'messages[0].content[0]');
    bad({ messages: [{ role: 'tool', content: 'x' }] }, 'messages[0].tool_call_id');
    bad({ messages: [{ role: 'user', content: 'x' }], n: 2 }, 'n');
    bad({ messages: [{ role: 'function', content: 'x' }] }, 'messages[0].role');
  });

  it('drops empty assistant text (Anthropic rejects empty text blocks)', () => {
    const r = t.request({ messages: [{ role: 'user', content: 'a' }, { role: 'assistant', content: '' }, { role: 'user', content: 'b' }] }, 'm', false);
    assert.deepEqual(r.body.messages, [{ role: 'user', content: [{ type: 'text', text: 'a' }, { type: 'text', text: 'b' }] }]);
  });

  it('sends the key as x-api-key with the API version', () => {
    assert.deepEqual(t.authHeaders('sk-ant-1'), { 'x-api-key': 'sk-ant-1', 'anthropic-version': '2023-06-01' });
  });
});

describe('anthropic: response', () => {
  it('text and tool_use blocks become content and tool_calls; cache tokens count as input', () => {
    const body = {
      id: 'msg_01',
      type: 'message',
      role: 'assistant',
      model: 'claude-x',
      content: [
        { type: 'thinking', thinking: 'hmm', signature: 's' },
        { type: 'text', text: 'Let me check. ' },
        { type: 'text', text: 'One moment.' },
        { type: 'tool_use', id: 'toolu_1', name: 'weather', input: { city: 'Paris' } },
      ],
      stop_reason: 'tool_use',
      stop_sequence: null,
      usage: { input_tokens: 10, output_tokens: 20, cache_read_input_tokens: 100, cache_creation_input_tokens: 5 },
    };
    const r = t.response(body, 'gpt-4o');
    assert.equal(r.object, 'chat.completion');
    assert.equal(r.model, 'gpt-4o');
    assert.deepEqual(r.choices, [
      {
        index: 0,
        message: {
          role: 'assistant',
          content: 'Let me check. One moment.',
          refusal: null,
          tool_calls: [{ id: 'toolu_1', type: 'function', function: { name: 'weather', arguments: '{"city":"Paris"}' } }],
        },
        logprobs: null,
        finish_reason: 'tool_calls',
      },
    ]);
    assert.deepEqual(r.usage, { prompt_tokens: 115, completion_tokens: 20, total_tokens: 135, prompt_tokens_details: { cached_tokens: 100 } });
    assert.deepEqual(t.usage(body), { input: 115, output: 20, total: 135, cachedInput: 100 });
  });

  it('maps every stop reason to a standard finish_reason', () => {
    const cases: Array<[string | null, string]> = [
      ['end_turn', 'stop'],
      ['stop_sequence', 'stop'],
      ['pause_turn', 'stop'],
      ['max_tokens', 'length'],
      ['model_context_window_exceeded', 'length'],
      ['tool_use', 'tool_calls'],
      ['refusal', 'content_filter'],
      ['some_future_reason', 'stop'],
      [null, 'stop'],
    ];
    for (const [reason, want] of cases) {
      const r = t.response({ id: 'm', content: [{ type: 'text', text: 'x' }], stop_reason: reason, usage: { input_tokens: 1, output_tokens: 1 } }, 'm');
      assert.equal((r.choices as Json[])[0]!.finish_reason, want, String(reason));
    }
  });

  it('a reply with only a tool call has content null', () => {
    const r = t.response({ id: 'm', content: [{ type: 'tool_use', id: 't', name: 'f', input: {} }], stop_reason: 'tool_use' }, 'm');
    assert.equal(((r.choices as Json[])[0]!.message as Json).content, null);
    assert.equal(r.usage, undefined);
  });
});

describe('anthropic: errors', () => {
  const err = (status: number, type: string, message = 'boom') => t.error(status, Buffer.from(JSON.stringify({ type: 'error', error: { type, message }, request_id: 'req_1' })));

  it('529 overloaded becomes 503 server_error', () => {
    assert.deepEqual(err(529, 'overloaded_error', 'Overloaded'), { status: 503, body: { error: { message: 'Overloaded', type: 'server_error', param: null, code: 'overloaded' } } });
  });

  it('maps the documented error types to OpenAI types and codes, keeping the status', () => {
    assert.deepEqual(err(400, 'invalid_request_error').body.error.type, 'invalid_request_error');
    assert.deepEqual(err(401, 'authentication_error').body.error, { message: 'boom', type: 'invalid_request_error', param: null, code: 'invalid_api_key' });
    assert.equal(err(402, 'billing_error').body.error.code, 'insufficient_quota');
    assert.equal(err(403, 'permission_error').body.error.type, 'permission_error');
    assert.equal(err(404, 'not_found_error').body.error.code, 'model_not_found');
    assert.equal(err(413, 'request_too_large').status, 413);
    const rl = err(429, 'rate_limit_error');
    assert.equal(rl.status, 429);
    assert.equal(rl.body.error.code, 'rate_limit_exceeded');
    assert.equal(err(500, 'api_error').body.error.type, 'server_error');
  });

  it('a body that is not Anthropic JSON still yields an OpenAI error with an excerpt', () => {
    const r = t.error(502, Buffer.from('<html>Bad Gateway</html>'));
    assert.equal(r.status, 502);
    assert.equal(r.body.error.type, 'server_error');
    assert.match(r.body.error.message, /Bad Gateway/);
    assert.equal(t.error(529, Buffer.from('')).status, 503);
  });
});

describe('anthropic: stream', () => {
  const textStream = sse([
    msgStart({ input_tokens: 25, output_tokens: 1, cache_read_input_tokens: 0 }),
    ['content_block_start', { type: 'content_block_start', index: 0, content_block: { type: 'text', text: '' } }],
    ['ping', { type: 'ping' }],
    ['content_block_delta', { type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text: 'Hello' } }],
    ['content_block_delta', { type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text: ', wörld 🌍' } }],
    ['content_block_stop', { type: 'content_block_stop', index: 0 }],
    ['message_delta', { type: 'message_delta', delta: { stop_reason: 'end_turn', stop_sequence: null }, usage: { output_tokens: 15 } }],
    ['message_stop', { type: 'message_stop' }],
  ]);

  it('text: role first, deltas, finish on the last choice chunk, then the usage chunk; one id throughout', () => {
    const { chunks, usage } = decodeEveryCut(textStream);
    const a = assemble(chunks);
    assert.equal(a.role, 'assistant');
    assert.equal(a.content, 'Hello, wörld 🌍');
    assert.deepEqual(a.finish, ['stop']);
    for (const c of chunks) {
      assert.equal(c.id, 'chatcmpl-1');
      assert.equal(c.model, 'claude-x');
      assert.equal(c.created, 1700000000);
      assert.equal(c.object, 'chat.completion.chunk');
    }
    const last = chunks[chunks.length - 1]!;
    assert.deepEqual(last.choices, []);
    // Cumulative: message_delta's 15 replaces message_start's 1 (not 16).
    assert.deepEqual(last.usage, { prompt_tokens: 25, completion_tokens: 15, total_tokens: 40 });
    const beforeLast = chunks[chunks.length - 2]!;
    assert.equal((beforeLast.choices as Json[])[0]!.finish_reason, 'stop');
    // Every other chunk carries usage: null, as OpenAI does with include_usage.
    for (const c of chunks.slice(0, -1)) assert.equal(c.usage, null);
    assert.deepEqual(usage, { input: 25, output: 15, total: 40 });
  });

  it('without include_usage there is no usage chunk and no usage field, but usage is still known', () => {
    const d = t.stream({ ...OPTS, includeUsage: false });
    const chunks = [...d.push(Buffer.from(textStream)), ...d.end()];
    assert.ok(chunks.every((c) => Array.isArray(c.choices) && (c.choices as unknown[]).length === 1));
    assert.ok(chunks.every((c) => !('usage' in c)));
    assert.deepEqual(d.usage, { input: 25, output: 15, total: 40 });
  });

  it('CRLF-framed streams decode the same', () => {
    const crlf = textStream.replace(/\n/g, '\r\n');
    assert.deepEqual(assemble(decodeEveryCut(crlf).chunks), assemble(decodeEveryCut(textStream).chunks));
  });

  it('tool_use: tool_calls index is the ordinal of the tool block, not the Anthropic block index', () => {
    const wire = sse([
      msgStart(),
      ['content_block_start', { type: 'content_block_start', index: 0, content_block: { type: 'thinking', thinking: '' } }],
      ['content_block_delta', { type: 'content_block_delta', index: 0, delta: { type: 'thinking_delta', thinking: 'Need weather.' } }],
      ['content_block_delta', { type: 'content_block_delta', index: 0, delta: { type: 'signature_delta', signature: 'sig' } }],
      ['content_block_stop', { type: 'content_block_stop', index: 0 }],
      ['content_block_start', { type: 'content_block_start', index: 1, content_block: { type: 'text', text: '' } }],
      ['content_block_delta', { type: 'content_block_delta', index: 1, delta: { type: 'text_delta', text: 'Checking.' } }],
      ['content_block_stop', { type: 'content_block_stop', index: 1 }],
      ['content_block_start', { type: 'content_block_start', index: 2, content_block: { type: 'tool_use', id: 'toolu_P', name: 'weather', input: {} } }],
      ['content_block_delta', { type: 'content_block_delta', index: 2, delta: { type: 'input_json_delta', partial_json: '' } }],
      ['content_block_delta', { type: 'content_block_delta', index: 2, delta: { type: 'input_json_delta', partial_json: '{"city": "Pa' } }],
      ['content_block_delta', { type: 'content_block_delta', index: 2, delta: { type: 'input_json_delta', partial_json: 'ris"}' } }],
      ['content_block_stop', { type: 'content_block_stop', index: 2 }],
      ['ping', { type: 'ping' }],
      ['content_block_start', { type: 'content_block_start', index: 3, content_block: { type: 'tool_use', id: 'toolu_R', name: 'weather', input: {} } }],
      ['content_block_delta', { type: 'content_block_delta', index: 3, delta: { type: 'input_json_delta', partial_json: '{"city":"Rome"}' } }],
      ['content_block_stop', { type: 'content_block_stop', index: 3 }],
      ['message_delta', { type: 'message_delta', delta: { stop_reason: 'tool_use', stop_sequence: null }, usage: { output_tokens: 60 } }],
      ['message_stop', { type: 'message_stop' }],
    ]);
    const { chunks } = decodeEveryCut(wire);
    const a = assemble(chunks);
    assert.equal(a.content, 'Checking.');
    assert.deepEqual(a.tools, [
      { id: 'toolu_P', name: 'weather', args: '{"city": "Paris"}' },
      { id: 'toolu_R', name: 'weather', args: '{"city":"Rome"}' },
    ]);
    assert.deepEqual(a.finish, ['tool_calls']);
    const indexes = chunks.flatMap((c) => ((c.choices as Json[])[0]?.delta as Json | undefined)?.tool_calls as Json[] ?? []).map((tc) => tc.index);
    assert.deepEqual([...new Set(indexes)], [0, 1]);
    // The first fragment of a tool call carries id, type and name; later ones only arguments.
    const first = chunks.find((c) => ((c.choices as Json[])[0]?.delta as Json | undefined)?.tool_calls) as Json;
    assert.deepEqual(((first.choices as Json[])[0]!.delta as Json).tool_calls, [{ index: 0, id: 'toolu_P', type: 'function', function: { name: 'weather', arguments: '' } }]);
  });

  it('counts cache tokens into input and reports them as cached', () => {
    const wire = sse([
      msgStart({ input_tokens: 3, output_tokens: 1, cache_read_input_tokens: 2000, cache_creation_input_tokens: 10 }),
      ['content_block_start', { type: 'content_block_start', index: 0, content_block: { type: 'text', text: '' } }],
      ['content_block_delta', { type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text: 'ok' } }],
      ['message_delta', { type: 'message_delta', delta: { stop_reason: 'max_tokens', stop_sequence: null }, usage: { output_tokens: 9, input_tokens: 3, cache_read_input_tokens: 2000, cache_creation_input_tokens: 10 } }],
      ['message_stop', { type: 'message_stop' }],
    ]);
    const { chunks, usage } = decodeEveryCut(wire);
    assert.deepEqual(assemble(chunks).finish, ['length']);
    assert.deepEqual(usage, { input: 2013, output: 9, total: 2022, cachedInput: 2000 });
    assert.deepEqual(chunks[chunks.length - 1]!.usage, { prompt_tokens: 2013, completion_tokens: 9, total_tokens: 2022, prompt_tokens_details: { cached_tokens: 2000 } });
  });

  it('a mid-stream error event becomes an {error} object and ends the translation', () => {
    const wire =
      sse([
        msgStart(),
        ['content_block_start', { type: 'content_block_start', index: 0, content_block: { type: 'text', text: '' } }],
        ['content_block_delta', { type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text: 'Par' } }],
        ['error', { type: 'error', error: { type: 'overloaded_error', message: 'Overloaded' } }],
      ]) + 'event: message_stop\ndata: {"type":"message_stop"}\n\n';
    const { chunks, usage } = decodeEveryCut(wire);
    const last = chunks[chunks.length - 1]!;
    assert.deepEqual(last, { error: { message: 'Overloaded', type: 'server_error', param: null, code: 'overloaded' } });
    assert.equal(chunks.filter((c) => 'error' in c).length, 1);
    assert.deepEqual(assemble(chunks.slice(0, -1)).finish, []);
    assert.deepEqual(usage, { input: 25, output: 1, total: 26 });
  });

  it('a stream cut off before message_delta ends with an error, not a normal finish', () => {
    const wire = sse([
      msgStart(),
      ['content_block_start', { type: 'content_block_start', index: 0, content_block: { type: 'text', text: '' } }],
      ['content_block_delta', { type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text: 'Half an ans' } }],
    ]);
    const { chunks } = decodeEveryCut(wire);
    assert.deepEqual(assemble(chunks).finish, []);
    assert.equal((chunks[chunks.length - 1]!.error as Json).code, 'stream_truncated');
  });

  it('message_delta without message_stop still finishes with usage', () => {
    const wire = sse([msgStart(), ['message_delta', { type: 'message_delta', delta: { stop_reason: 'end_turn' }, usage: { output_tokens: 2 } }]]);
    const { chunks } = decodeEveryCut(wire);
    assert.deepEqual(assemble(chunks).finish, ['stop']);
    assert.deepEqual(chunks[chunks.length - 1]!.usage, { prompt_tokens: 25, completion_tokens: 2, total_tokens: 27 });
  });

  it('garbage data becomes an error object rather than a crash', () => {
    const d = t.stream(OPTS);
    const out = [...d.push(Buffer.from('event: content_block_delta\ndata: {oops\n\n')), ...d.end()];
    assert.equal(out.length, 1);
    assert.equal((out[0]!.error as Json).code, 'bad_upstream_event');
  });
});
