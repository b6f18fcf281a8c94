// Usage extraction from every place providers put it, the include_usage
// contract of the OpenAI stream decoder, and the estimate.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { OpenAIFrames } from '../../../src/upstreams/ai/frames.js';
import { base64ToFloats, floatsToBase64, openAIErrorFrom } from '../../../src/upstreams/ai/handler.js';
import { estimateUsage, findUsageObject, usageFromObject } from '../../../src/upstreams/ai/usage.js';

const sse = (...events: unknown[]) => Buffer.from(events.map((e) => (typeof e === 'string' ? `${e}\n\n` : `data: ${JSON.stringify(e)}\n\n`)).join(''));
const chunk = (extra: Record<string, unknown> = {}, delta: Record<string, unknown> = { content: 'hi' }) => ({ id: 'c1', object: 'chat.completion.chunk', created: 1, model: 'm', choices: [{ index: 0, delta, finish_reason: null }], ...extra });
const U = { prompt_tokens: 10, completion_tokens: 5, total_tokens: 15 };

describe('usage extraction', () => {
  it('reads chat, responses and cached-token usage', () => {
    assert.deepEqual(usageFromObject(U), { input: 10, output: 5, total: 15 });
    assert.deepEqual(usageFromObject({ input_tokens: 3, output_tokens: 4 }), { input: 3, output: 4, total: 7 });
    assert.deepEqual(usageFromObject({ prompt_tokens: 10, completion_tokens: 1, total_tokens: 11, prompt_tokens_details: { cached_tokens: 8 } }), { input: 10, output: 1, total: 11, cachedInput: 8 });
    assert.equal(usageFromObject({ completion_tokens: 1 }), undefined, 'no input count: not usage');
    assert.equal(usageFromObject(null), undefined);
  });

  it('finds usage top level, in choices[0] (moonshot) and in x_groq', () => {
    assert.equal(findUsageObject({ usage: U }), U);
    assert.equal(findUsageObject({ choices: [{ index: 0, usage: U }] }), U);
    assert.equal(findUsageObject({ choices: [], x_groq: { usage: U } }), U);
    assert.equal(findUsageObject({ usage: null, choices: [] }), undefined);
  });
});

describe('OpenAI stream frames', () => {
  it('holds the usage chunk back and gives it only to a client that asked', () => {
    for (const asked of [false, true]) {
      const f = new OpenAIFrames(asked, true);
      const out = f.push(sse(chunk({ usage: null }), { ...chunk(), choices: [], usage: U }, 'data: [DONE]'));
      assert.equal(out.length, 1);
      assert.equal(out[0]!.data, JSON.stringify(chunk({ usage: null })), 'content chunks pass as the provider sent them');
      assert.deepEqual(f.usage, { input: 10, output: 5, total: 15 });
      const u = f.usageChunk(f.usage!);
      if (!asked) assert.equal(u, undefined);
      else assert.deepEqual(JSON.parse(u!.data).choices, []);
      assert.equal(f.sawDone, true);
    }
  });

  it('moves usage out of a content chunk (moonshot, mistral, groq) into its own chunk', () => {
    const f = new OpenAIFrames(true, true);
    const out = f.push(sse(chunk({}, {}), { ...chunk(), choices: [{ index: 0, delta: {}, finish_reason: 'stop', usage: U }] }, { ...chunk(), x_groq: { id: 'r', usage: U } }));
    assert.equal(out.length, 3);
    for (const o of out) {
      const j = JSON.parse(o.data);
      assert.equal(j.usage, undefined);
      assert.equal(j.choices[0].usage, undefined);
      assert.equal(j.x_groq?.usage, undefined);
    }
    const u = JSON.parse(f.usageChunk(f.usage!)!.data);
    assert.deepEqual(u.choices, []);
    assert.equal(u.usage.total_tokens, 15);
    assert.equal(u.id, 'c1');
  });

  it('survives any cut of the bytes, comments, CRLF; errors come out in OpenAI shape', () => {
    const bytes = Buffer.from(`: OPENROUTER PROCESSING\r\n\r\ndata: ${JSON.stringify(chunk())}\r\n\r\n: keep-alive\n\ndata: {"error":{"message":"boom","code":502}}\n\n`);
    for (let cut = 1; cut < bytes.length; cut += 7) {
      const f = new OpenAIFrames(false, true);
      const out = [...f.push(bytes.subarray(0, cut)), ...f.push(bytes.subarray(cut)), ...f.end()];
      assert.equal(out.length, 2, `cut at ${cut}`);
      assert.equal(out[1]!.isError, true);
      assert.deepEqual(JSON.parse(out[1]!.data), { error: { message: 'boom', type: 'server_error', param: null, code: '502' } });
    }
  });

  it('collects generated text for an estimate when no usage comes', async () => {
    const f = new OpenAIFrames(true, true);
    f.push(sse(chunk({}, { content: 'hello ' }), chunk({}, { tool_calls: [{ index: 0, function: { name: 'f', arguments: '{"a":1}' } }] })));
    assert.equal(f.outputText, 'hello f{"a":1}');
    const u = await estimateUsage('the quick brown fox', f.outputText);
    assert.equal(u.estimated, true);
    assert.ok(u.input >= 4 && u.output >= 3);
    assert.equal(u.total, u.input + u.output);
  });
});

describe('wire helpers', () => {
  it('base64 embeddings are float32 little-endian', () => {
    const v = [1, -2.5, 0.1];
    const b = floatsToBase64(v);
    assert.equal(b, Buffer.from(new Float32Array(v).buffer).toString('base64'));
    assert.deepEqual(base64ToFloats(b), [1, -2.5, Math.fround(0.1)]);
  });

  it('provider errors become OpenAI-shaped whatever they looked like', () => {
    assert.deepEqual(openAIErrorFrom(429, Buffer.from('{"error":{"message":"slow down","type":"requests","code":"rate_limit_exceeded"}}')).error, { message: 'slow down', type: 'requests', param: null, code: 'rate_limit_exceeded' });
    assert.equal(openAIErrorFrom(502, Buffer.from('<html>bad gateway</html>')).error.type, 'server_error');
    assert.equal(openAIErrorFrom(404, Buffer.from('{"error":{"code":"404","message":"Resource not found"}}')).error.message, 'Resource not found');
    assert.equal(openAIErrorFrom(400, Buffer.from('{"error":"plain"}')).error.message, 'plain');
  });
});
