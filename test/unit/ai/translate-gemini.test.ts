// OpenAI chat <-> Gemini generateContent / streamGenerateContent?alt=sse.
// Samples follow the GenerateContentResponse shape (candidates, usageMetadata,
// responseId) and the stream's facts: whole frames, no [DONE], CRLF frames,
// function calls arriving whole, usageMetadata as a running total.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { geminiTranslator as t } from '../../../src/upstreams/ai/translate/gemini.js';
import { TranslationError } from '../../../src/upstreams/ai/translate/common.js';
import type { Json } from '../../../src/upstreams/ai/translate/types.js';

const OPTS = { id: 'chatcmpl-g', model: 'gemini-x', created: 1700000001, includeUsage: true };

function frames(list: Json[], eol = '\r\n'): string {
  return list.map((f) => `data: ${JSON.stringify(f)}${eol}${eol}`).join('');
}

function decodeEveryCut(wire: string, opts = OPTS): { chunks: Json[]; usage: unknown } {
  const buf = Buffer.from(wire);
  const run = (cut?: number) => {
    const d = t.stream(opts);
    const out: Json[] = cut === undefined ? d.push(buf) : [...d.push(buf.subarray(0, cut)), ...d.push(buf.subarray(cut))];
    out.push(...d.end());
    return { chunks: out, usage: d.usage };
  };
  const whole = run();
  for (let i = 1; i < buf.length; i++) assert.deepEqual(run(i), whole, `cut at ${i}`);
  return whole;
}

function assemble(chunks: Json[], index = 0) {
  let content = '';
  let role: string | undefined;
  const tools: Array<{ id?: string; name?: string; args: string }> = [];
  const finish: unknown[] = [];
  for (const c of chunks) {
    for (const ch of (c.choices as Json[]) ?? []) {
      if (ch.index !== index) continue;
      const d = ch.delta as Json;
      if (d.role) role = d.role as string;
      if (typeof d.content === 'string') content += d.content;
      for (const tc of (d.tool_calls as Json[]) ?? []) {
        const i = tc.index as number;
        tools[i] ??= { args: '' };
        if (tc.id) tools[i]!.id = tc.id as string;
        const fn = tc.function as Json;
        if (fn.name) tools[i]!.name = fn.name as string;
        tools[i]!.args += (fn.arguments as string) ?? '';
      }
      if (ch.finish_reason !== null) finish.push(ch.finish_reason);
    }
  }
  return { content, role, tools, finish };
}

describe('gemini: request', () => {
  it('builds contents, systemInstruction, generationConfig and the model path', () => {
    const r = t.request(
      {
        messages: [
          { role: 'system', content: 'Be brief.' },
          { role: 'user', content: 'Hi' },
          { role: 'assistant', content: 'Hello!' },
          { role: 'user', content: [{ type: 'text', text: 'Look:' }, { type: 'image_url', image_url: { url: 'data:image/jpeg;base64,/9j/4AAQ' } }] },
        ],
        temperature: 0.5,
        top_p: 0.8,
        max_completion_tokens: 200,
        stop: ['X', 'Y'],
        n: 2,
        response_format: { type: 'json_object' },
      },
      'gemini-2.0-flash',
      false,
    );
    assert.equal(r.path, '/v1beta/models/gemini-2.0-flash:generateContent');
    assert.deepEqual(r.body, {
      contents: [
        { role: 'user', parts: [{ text: 'Hi' }] },
        { role: 'model', parts: [{ text: 'Hello!' }] },
        { role: 'user', parts: [{ text: 'Look:' }, { inlineData: { mimeType: 'image/jpeg', data: '/9j/4AAQ' } }] },
      ],
      systemInstruction: { parts: [{ text: 'Be brief.' }] },
      generationConfig: { temperature: 0.5, topP: 0.8, maxOutputTokens: 200, stopSequences: ['X', 'Y'], candidateCount: 2, responseMimeType: 'application/json' },
    });
  });

  it('a stream request uses streamGenerateContent?alt=sse', () => {
    const r = t.request({ messages: [{ role: 'user', content: 'x' }] }, 'gemini-pro', true);
    assert.equal(r.path, '/v1beta/models/gemini-pro:streamGenerateContent?alt=sse');
    assert.equal(r.stream, true);
    assert.equal(r.body.generationConfig, undefined);
  });

  it('a hostile model name cannot reach another path or add a query', () => {
    const r = t.request({ messages: [{ role: 'user', content: 'x' }] }, '../../v1/files?key=stolen#', false);
    assert.equal(r.path, '/v1beta/models/..%2F..%2Fv1%2Ffiles%3Fkey%3Dstolen%23:generateContent');
    assert.equal(t.request({ messages: [] }, 'models/gemini-pro', false).path, '/v1beta/models/gemini-pro:generateContent');
  });

  it('round-trips function calls: tool results find their function name through the tool_call_id', () => {
    const r = t.request(
      {
        messages: [
          { role: 'user', content: 'Weather in Paris and Rome?' },
          {
            role: 'assistant',
            content: null,
            tool_calls: [
              { id: 'call_p', type: 'function', function: { name: 'weather', arguments: '{"city":"Paris"}' } },
              { id: 'call_t', type: 'function', function: { name: 'time', arguments: '{}' } },
            ],
          },
          { role: 'tool', tool_call_id: 'call_t', content: '12:00' },
          { role: 'tool', tool_call_id: 'call_p', content: '{"temp":18}' },
        ],
        tools: [
          {
            type: 'function',
            function: {
              name: 'weather',
              description: 'Weather',
              parameters: { $schema: 'http://json-schema.org/draft-07/schema#', type: 'object', additionalProperties: false, properties: { additionalProperties: { type: 'string' }, city: { type: 'string' } } },
            },
          },
          { type: 'function', function: { name: 'time' } },
        ],
        tool_choice: { type: 'function', function: { name: 'weather' } },
      },
      'g',
      false,
    );
    assert.deepEqual(r.body.contents, [
      { role: 'user', parts: [{ text: 'Weather in Paris and Rome?' }] },
      { role: 'model', parts: [{ functionCall: { name: 'weather', args: { city: 'Paris' } } }, { functionCall: { name: 'time', args: {} } }] },
      {
        role: 'user',
        parts: [{ functionResponse: { name: 'time', response: { content: '12:00' } } }, { functionResponse: { name: 'weather', response: { temp: 18 } } }],
      },
    ]);
    // $schema and additionalProperties are dropped as keywords, but a property named additionalProperties stays.
    assert.deepEqual(r.body.tools, [
      {
        functionDeclarations: [
          { name: 'weather', description: 'Weather', parameters: { type: 'object', properties: { additionalProperties: { type: 'string' }, city: { type: 'string' } } } },
          { name: 'time' },
        ],
      },
    ]);
    assert.deepEqual(r.body.toolConfig, { functionCallingConfig: { mode: 'ANY', allowedFunctionNames: ['weather'] } });
  });

  it('a thoughtSignature rides in the tool call id and goes back on the functionCall part', () => {
    const sig = Buffer.from([0xfb, 0xff, 0xbf, 0x01, 0x02, 0x03, 0xfe]).toString('base64'); // has + and /
    assert.match(sig, /[+/]/);
    const r = t.response({ candidates: [{ content: { role: 'model', parts: [{ functionCall: { name: 'f', args: { a: 1 } }, thoughtSignature: sig }, { functionCall: { name: 'g', args: {} } }] }, finishReason: 'STOP' }] }, 'g');
    const calls = ((r.choices as Json[])[0]!.message as Json).tool_calls as Json[];
    assert.match(calls[0]!.id as string, /^call_[\w-]+__thought__[\w-]+$/, 'id stays URL- and header-safe');
    assert.doesNotMatch(calls[1]!.id as string, /__thought__/);
    const req = t.request(
      {
        messages: [
          { role: 'user', content: 'x' },
          { role: 'assistant', content: null, tool_calls: calls },
          { role: 'tool', tool_call_id: calls[0]!.id, content: '1' },
          { role: 'tool', tool_call_id: calls[1]!.id, content: '2' },
        ],
      },
      'g',
      false,
    );
    const model = (req.body.contents as Json[])[1]!;
    assert.deepEqual(model.parts, [{ functionCall: { name: 'f', args: { a: 1 } }, thoughtSignature: sig }, { functionCall: { name: 'g', args: {} } }]);
    assert.deepEqual(((req.body.contents as Json[])[2]!.parts as Json[]).map((p) => (p.functionResponse as Json).name), ['f', 'g']);
  });

  it('tool_choice none/auto/required map to NONE/AUTO/ANY', () => {
    const base = { messages: [{ role: 'user', content: 'x' }] };
    assert.deepEqual(t.request({ ...base, tool_choice: 'none' }, 'g', false).body.toolConfig, { functionCallingConfig: { mode: 'NONE' } });
    assert.deepEqual(t.request({ ...base, tool_choice: 'auto' }, 'g', false).body.toolConfig, { functionCallingConfig: { mode: 'AUTO' } });
    assert.deepEqual(t.request({ ...base, tool_choice: 'required' }, 'g', false).body.toolConfig, { functionCallingConfig: { mode: 'ANY' } });
  });

  it('refuses a tool result for an unknown call and images by URL, naming the field', () => {
    const bad = (body: Json, param: string) =>
      assert.throws(() => t.request(body, 'g', false), (e: unknown) => e instanceof TranslationError && e.body.error.param === param);
    bad({ messages: [{ role: 'tool', tool_call_id: 'nope', content: 'x' }] }, 'messages[0].tool_call_id');
    bad({ messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url: 'https://example.com/a.png' } }] }] }, 'messages[0].content[0]');
  });

  it('sends the key as x-goog-api-key', () => {
    assert.deepEqual(t.authHeaders('AIza-1'), { 'x-goog-api-key': 'AIza-1' });
  });
});

describe('gemini: response', () => {
  const body = {
    candidates: [
      {
        content: {
          role: 'model',
          parts: [{ text: 'thinking...', thought: true }, { text: 'Paris is ' }, { text: '18C.' }, { functionCall: { name: 'log', args: { level: 'info' } } }],
        },
        finishReason: 'STOP',
        index: 0,
      },
    ],
    usageMetadata: { promptTokenCount: 12, candidatesTokenCount: 7, thoughtsTokenCount: 5, totalTokenCount: 24, cachedContentTokenCount: 4 },
    modelVersion: 'gemini-2.0-flash',
    responseId: 'abc123',
  };

  it('parts become content and tool_calls with stable ids; STOP with calls is tool_calls; thoughts count as output', () => {
    const r = t.response(body, 'gpt-4o');
    const again = t.response(body, 'gpt-4o');
    assert.equal(r.id, 'chatcmpl-abc123');
    const ch = (r.choices as Json[])[0]!;
    const msg = ch.message as Json;
    assert.equal(msg.content, 'Paris is 18C.');
    const calls = msg.tool_calls as Json[];
    assert.equal(calls.length, 1);
    assert.deepEqual(calls[0]!.function, { name: 'log', arguments: '{"level":"info"}' });
    assert.match(calls[0]!.id as string, /^call_[\w-]{24}$/);
    assert.equal(calls[0]!.id, ((again.choices as Json[])[0]!.message as Json).tool_calls && (((again.choices as Json[])[0]!.message as Json).tool_calls as Json[])[0]!.id);
    assert.equal(ch.finish_reason, 'tool_calls');
    assert.deepEqual(r.usage, { prompt_tokens: 12, completion_tokens: 12, total_tokens: 24, prompt_tokens_details: { cached_tokens: 4 } });
    assert.deepEqual(t.usage(body), { input: 12, output: 12, total: 24, cachedInput: 4 });
  });

  it('finish reasons are always OpenAI reasons', () => {
    const cases: Array<[string, string]> = [
      ['STOP', 'stop'],
      ['MAX_TOKENS', 'length'],
      ['SAFETY', 'content_filter'],
      ['RECITATION', 'content_filter'],
      ['BLOCKLIST', 'content_filter'],
      ['PROHIBITED_CONTENT', 'content_filter'],
      ['SPII', 'content_filter'],
      ['LANGUAGE', 'content_filter'],
      ['OTHER', 'content_filter'],
      ['MALFORMED_FUNCTION_CALL', 'stop'],
      ['SOMETHING_NEW', 'stop'],
    ];
    for (const [reason, want] of cases) {
      const r = t.response({ candidates: [{ content: { parts: [{ text: 'x' }] }, finishReason: reason }] }, 'g');
      assert.equal((r.choices as Json[])[0]!.finish_reason, want, reason);
    }
  });

  it('a blocked prompt (no candidates) is a content_filter finish', () => {
    const r = t.response({ promptFeedback: { blockReason: 'SAFETY' }, usageMetadata: { promptTokenCount: 3, totalTokenCount: 3 } }, 'g');
    assert.deepEqual((r.choices as Json[])[0], { index: 0, message: { role: 'assistant', content: null, refusal: null }, logprobs: null, finish_reason: 'content_filter' });
  });

  it('several candidates become several choices', () => {
    const r = t.response(
      {
        candidates: [
          { content: { parts: [{ text: 'A' }] }, finishReason: 'STOP', index: 0 },
          { content: { parts: [{ text: 'B' }] }, finishReason: 'MAX_TOKENS', index: 1 },
        ],
      },
      'g',
    );
    assert.deepEqual(
      (r.choices as Json[]).map((c) => [c.index, (c.message as Json).content, c.finish_reason]),
      [
        [0, 'A', 'stop'],
        [1, 'B', 'length'],
      ],
    );
  });
});

describe('gemini: errors', () => {
  it('keeps the HTTP status and maps the message', () => {
    const r = t.error(429, Buffer.from(JSON.stringify({ error: { code: 429, message: 'Resource has been exhausted', status: 'RESOURCE_EXHAUSTED' } })));
    assert.deepEqual(r, { status: 429, body: { error: { message: 'Resource has been exhausted', type: 'rate_limit_error', param: null, code: 'rate_limit_exceeded' } } });
    assert.equal(t.error(404, Buffer.from(JSON.stringify({ error: { code: 404, message: 'models/x is not found', status: 'NOT_FOUND' } }))).body.error.code, 'model_not_found');
    assert.equal(t.error(503, Buffer.from(JSON.stringify([{ error: { code: 503, message: 'overloaded', status: 'UNAVAILABLE' } }]))).body.error.message, 'overloaded');
  });

  it('an invalid key (400 API_KEY_INVALID) becomes 401', () => {
    const r = t.error(
      400,
      Buffer.from(JSON.stringify({ error: { code: 400, message: 'API key not valid.', status: 'INVALID_ARGUMENT', details: [{ '@type': 'type.googleapis.com/google.rpc.ErrorInfo', reason: 'API_KEY_INVALID' }] } })),
    );
    assert.equal(r.status, 401);
    assert.equal(r.body.error.code, 'invalid_api_key');
  });
});

describe('gemini: stream', () => {
  const wire = frames([
    { candidates: [{ content: { role: 'model', parts: [{ text: 'Hel' }] }, index: 0 }], usageMetadata: { promptTokenCount: 9, totalTokenCount: 9 }, responseId: 'r1' },
    { candidates: [{ content: { role: 'model', parts: [{ text: 'lo, ' }] }, index: 0 }], usageMetadata: { promptTokenCount: 9, candidatesTokenCount: 2, totalTokenCount: 11 }, responseId: 'r1' },
    { candidates: [{ content: { role: 'model', parts: [{ text: 'wörld' }] }, finishReason: 'STOP', index: 0 }], usageMetadata: { promptTokenCount: 9, candidatesTokenCount: 4, totalTokenCount: 13 }, responseId: 'r1' },
  ]);

  it('CRLF frames, no [DONE]: text deltas, one finish, the last usageMetadata wins', () => {
    const { chunks, usage } = decodeEveryCut(wire);
    const a = assemble(chunks);
    assert.equal(a.role, 'assistant');
    assert.equal(a.content, 'Hello, wörld');
    assert.deepEqual(a.finish, ['stop']);
    assert.ok(chunks.every((c) => c.id === 'chatcmpl-g' && c.model === 'gemini-x'));
    assert.deepEqual(chunks[chunks.length - 1], { id: 'chatcmpl-g', object: 'chat.completion.chunk', created: 1700000001, model: 'gemini-x', choices: [], usage: { prompt_tokens: 9, completion_tokens: 4, total_tokens: 13 } });
    assert.deepEqual(usage, { input: 9, output: 4, total: 13 });
  });

  it('LF frames decode the same as CRLF frames', () => {
    assert.deepEqual(decodeEveryCut(wire.replace(/\r\n/g, '\n')).chunks, decodeEveryCut(wire).chunks);
  });

  it('whole function calls become tool_calls with ordinal indexes and finish tool_calls', () => {
    const { chunks } = decodeEveryCut(
      frames([
        { candidates: [{ content: { role: 'model', parts: [{ functionCall: { name: 'weather', args: { city: 'Paris' } } }] }, index: 0 }] },
        { candidates: [{ content: { role: 'model', parts: [{ functionCall: { name: 'weather', args: { city: 'Rome' } } }] }, finishReason: 'STOP', index: 0 }], usageMetadata: { promptTokenCount: 5, candidatesTokenCount: 8, totalTokenCount: 13 } },
      ]),
    );
    const a = assemble(chunks);
    assert.deepEqual(
      a.tools.map((x) => [x.name, x.args]),
      [
        ['weather', '{"city":"Paris"}'],
        ['weather', '{"city":"Rome"}'],
      ],
    );
    assert.notEqual(a.tools[0]!.id, a.tools[1]!.id);
    assert.deepEqual(a.finish, ['tool_calls']);
  });

  it('MAX_TOKENS and SAFETY finish as length and content_filter', () => {
    for (const [reason, want] of [
      ['MAX_TOKENS', 'length'],
      ['SAFETY', 'content_filter'],
    ]) {
      const { chunks } = decodeEveryCut(frames([{ candidates: [{ content: { parts: [{ text: 'x' }] }, finishReason: reason, index: 0 }] }]));
      assert.deepEqual(assemble(chunks).finish, [want]);
    }
  });

  it('an error frame becomes an {error} object; a stream without finishReason ends in an error', () => {
    const { chunks } = decodeEveryCut(
      frames([{ candidates: [{ content: { parts: [{ text: 'x' }] }, index: 0 }] }, { error: { code: 503, message: 'The model is overloaded.', status: 'UNAVAILABLE' } }]),
    );
    assert.deepEqual(chunks[chunks.length - 1], { error: { message: 'The model is overloaded.', type: 'server_error', param: null, code: null } });
    const cut = decodeEveryCut(frames([{ candidates: [{ content: { parts: [{ text: 'x' }] }, index: 0 }] }]));
    assert.equal((cut.chunks[cut.chunks.length - 1]!.error as Json).code, 'stream_truncated');
  });

  it('without include_usage: no usage chunk', () => {
    const d = t.stream({ ...OPTS, includeUsage: false });
    const out = [...d.push(Buffer.from(wire)), ...d.end()];
    assert.ok(out.every((c) => (c.choices as unknown[]).length === 1 && !('usage' in c)));
    assert.deepEqual(d.usage, { input: 9, output: 4, total: 13 });
  });
});
