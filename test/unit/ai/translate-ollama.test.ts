// OpenAI chat <-> Ollama's native /api/chat (NDJSON streams). Samples follow
// Ollama's documented chat API: one JSON object per line, the last with
// done: true, done_reason, prompt_eval_count and eval_count.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ollamaNativeTranslator as t } from '../../../src/upstreams/ai/translate/ollama.js';
import { TranslationError } from '../../../src/upstreams/ai/translate/common.js';
import type { Json } from '../../../src/upstreams/ai/translate/types.js';

const OPTS = { id: 'chatcmpl-o', model: 'llama3', created: 1700000002, includeUsage: true };

const line = (o: Json) => JSON.stringify(o) + '\n';
const at = '2026-01-01T00:00:00Z';

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

function text(chunks: Json[]): string {
  return chunks.map((c) => ((c.choices as Json[])[0]?.delta as Json | undefined)?.content ?? '').join('');
}
function finishes(chunks: Json[]): unknown[] {
  return chunks.flatMap((c) => (c.choices as Json[]).filter((ch) => ch.finish_reason !== null).map((ch) => ch.finish_reason));
}

describe('ollama: request', () => {
  it('POST /api/chat with options (num_predict from max tokens), images as base64, stream flag', () => {
    const r = t.request(
      {
        messages: [
          { role: 'developer', content: 'Be brief.' },
          { role: 'user', content: [{ type: 'text', text: 'What is ' }, { type: 'text', text: 'this?' }, { type: 'image_url', image_url: { url: 'data:image/png;base64,iVBOR' } }] },
        ],
        temperature: 0.1,
        top_p: 0.5,
        max_tokens: 300,
        max_completion_tokens: 64,
        stop: 'END',
        seed: 7,
        response_format: { type: 'json_object' },
      },
      'llama3.2',
      false,
    );
    assert.equal(r.path, '/api/chat');
    assert.deepEqual(r.body, {
      model: 'llama3.2',
      messages: [
        { role: 'system', content: 'Be brief.' },
        { role: 'user', content: 'What is this?', images: ['iVBOR'] },
      ],
      stream: false,
      options: { temperature: 0.1, top_p: 0.5, seed: 7, num_predict: 64, stop: ['END'] },
      format: 'json',
    });
    // Ollama streams unless told not to: the flag is always explicit.
    assert.equal(t.request({ messages: [] }, 'm', true).body.stream, true);
  });

  it('tool calls go out with object arguments and tool results carry the function name', () => {
    const r = t.request(
      {
        messages: [
          { role: 'user', content: 'weather?' },
          { role: 'assistant', content: '', tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'weather', arguments: '{"city":"Oslo"}' } }] },
          { role: 'tool', tool_call_id: 'call_1', content: '-3C' },
        ],
        tools: [{ type: 'function', function: { name: 'weather', parameters: { type: 'object' } } }],
      },
      'm',
      false,
    );
    assert.deepEqual(r.body.messages, [
      { role: 'user', content: 'weather?' },
      { role: 'assistant', content: '', tool_calls: [{ function: { name: 'weather', arguments: { city: 'Oslo' } } }] },
      { role: 'tool', content: '-3C', tool_name: 'weather' },
    ]);
    assert.deepEqual(r.body.tools, [{ type: 'function', function: { name: 'weather', parameters: { type: 'object' } } }]);
  });

  it('refuses image URLs it cannot send and n > 1', () => {
    assert.throws(
      () => t.request({ messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url: 'http://x/y.png' } }] }] }, 'm', false),
      (e: unknown) => e instanceof TranslationError && e.body.error.param === 'messages[0].content[0]',
    );
    assert.throws(() => t.request({ messages: [], n: 3 }, 'm', false), TranslationError);
  });

  it('no key: no auth header; a key (for a proxy in front) goes as a bearer token', () => {
    assert.deepEqual(t.authHeaders(''), {});
    assert.deepEqual(t.authHeaders('k'), { authorization: 'Bearer k' });
  });
});

describe('ollama: response', () => {
  it('message, tool calls with ids, done_reason and counts', () => {
    const r = t.response(
      {
        model: 'llama3',
        created_at: at,
        message: { role: 'assistant', content: '', tool_calls: [{ function: { name: 'weather', arguments: { city: 'Oslo' } } }] },
        done: true,
        done_reason: 'stop',
        prompt_eval_count: 30,
        eval_count: 12,
      },
      'gpt-4o',
    );
    const ch = (r.choices as Json[])[0]!;
    const msg = ch.message as Json;
    assert.equal(msg.content, null);
    const tc = (msg.tool_calls as Json[])[0]!;
    assert.match(tc.id as string, /^call_/);
    assert.deepEqual(tc.function, { name: 'weather', arguments: '{"city":"Oslo"}' });
    assert.equal(ch.finish_reason, 'tool_calls');
    assert.deepEqual(r.usage, { prompt_tokens: 30, completion_tokens: 12, total_tokens: 42 });
    assert.equal(r.model, 'gpt-4o');
  });

  it('done_reason length is length; plain text is stop', () => {
    const r = t.response({ message: { role: 'assistant', content: 'abc' }, done: true, done_reason: 'length', prompt_eval_count: 1, eval_count: 2 }, 'm');
    assert.equal((r.choices as Json[])[0]!.finish_reason, 'length');
    assert.equal(((r.choices as Json[])[0]!.message as Json).content, 'abc');
    assert.deepEqual(t.usage({ prompt_eval_count: 1, eval_count: 2 }), { input: 1, output: 2, total: 3 });
    assert.equal(t.usage({ message: {} }), undefined);
  });

  it('errors {"error": "..."} keep their status', () => {
    const r = t.error(404, Buffer.from('{"error":"model \\"nope\\" not found, try pulling it first"}'));
    assert.equal(r.status, 404);
    assert.equal(r.body.error.message, 'model "nope" not found, try pulling it first');
    assert.equal(r.body.error.code, 'model_not_found');
  });
});

describe('ollama: stream (NDJSON)', () => {
  const wire =
    line({ model: 'llama3', created_at: at, message: { role: 'assistant', content: 'Hej' }, done: false }) +
    line({ model: 'llama3', created_at: at, message: { role: 'assistant', content: ' världen' }, done: false }) +
    line({ model: 'llama3', created_at: at, message: { role: 'assistant', content: '' }, done: true, done_reason: 'stop', total_duration: 5, prompt_eval_count: 11, eval_count: 3 });

  it('lines split anywhere: text, finish, usage chunk from the done line', () => {
    const { chunks, usage } = decodeEveryCut(wire);
    assert.equal(text(chunks), 'Hej världen');
    assert.equal(((chunks[0]!.choices as Json[])[0]!.delta as Json).role, 'assistant');
    assert.deepEqual(finishes(chunks), ['stop']);
    assert.deepEqual(chunks[chunks.length - 1]!.usage, { prompt_tokens: 11, completion_tokens: 3, total_tokens: 14 });
    assert.deepEqual(usage, { input: 11, output: 3, total: 14 });
    assert.ok(chunks.every((c) => c.id === 'chatcmpl-o'));
  });

  it('CRLF lines and a last line without newline are read too', () => {
    const crlf = wire.replace(/\n/g, '\r\n').replace(/\r\n$/, '');
    assert.deepEqual(decodeEveryCut(crlf).chunks, decodeEveryCut(wire).chunks);
  });

  it('whole tool calls become indexed tool_calls and finish tool_calls', () => {
    const w =
      line({ model: 'm', message: { role: 'assistant', content: '', tool_calls: [{ function: { name: 'a', arguments: { x: 1 } } }, { function: { name: 'b', arguments: {} } }] }, done: false }) +
      line({ model: 'm', message: { role: 'assistant', content: '' }, done: true, done_reason: 'stop', prompt_eval_count: 2, eval_count: 2 });
    const { chunks } = decodeEveryCut(w);
    const tcs = chunks.flatMap((c) => ((c.choices as Json[])[0]?.delta as Json | undefined)?.tool_calls as Json[] ?? []);
    assert.deepEqual(
      tcs.map((x) => [x.index, (x.function as Json).name, (x.function as Json).arguments]),
      [
        [0, 'a', '{"x":1}'],
        [1, 'b', '{}'],
      ],
    );
    assert.deepEqual(finishes(chunks), ['tool_calls']);
  });

  it('an error line becomes an {error} object; a stream without done ends in an error', () => {
    const { chunks } = decodeEveryCut(line({ model: 'm', message: { role: 'assistant', content: 'x' }, done: false }) + line({ error: 'out of memory' }));
    assert.deepEqual(chunks[chunks.length - 1], { error: { message: 'out of memory', type: 'server_error', param: null, code: null } });
    const cut = decodeEveryCut(line({ model: 'm', message: { role: 'assistant', content: 'x' }, done: false }));
    assert.equal((cut.chunks[cut.chunks.length - 1]!.error as Json).code, 'stream_truncated');
  });
});
