// The native-protocol doubles themselves: the integration tests trust them to
// refuse what the real APIs refuse and to speak the real wire, so that is
// checked here with plain HTTP (and the real @anthropic-ai/sdk straight at the
// Anthropic double).
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import Anthropic from '@anthropic-ai/sdk';
import { startAnthropicDouble, type AnthropicDouble } from '../../doubles/llm/anthropic.js';
import { startGeminiDouble, type GeminiDouble } from '../../doubles/llm/gemini.js';
import { startOllamaDouble, type OllamaDouble } from '../../doubles/llm/ollama.js';

async function post(url: string, body: unknown, headers: Record<string, string> = {}): Promise<{ status: number; type: string; text: string; json: any }> {
  const r = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) });
  const text = await r.text();
  let json: any;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: r.status, type: r.headers.get('content-type') ?? '', text, json };
}

describe('LLM doubles speak their real wire', () => {
  let claude: AnthropicDouble;
  let gem: GeminiDouble;
  let ollama: OllamaDouble;
  before(async () => {
    claude = await startAnthropicDouble({ keys: ['k'] });
    gem = await startGeminiDouble({ keys: ['g'] });
    ollama = await startOllamaDouble();
  });
  after(async () => {
    await claude?.stop();
    await gem?.stop();
    await ollama?.stop();
  });

  it('anthropic: the real SDK reads its answers, streams included, and its errors', async () => {
    const a = new Anthropic({ baseURL: claude.baseUrl, apiKey: 'k', maxRetries: 0 });
    claude.script.push({ text: 'streamed words', thinking: 'hm', toolUses: [{ name: 'f', input: { a: [1, 2] } }], usage: { input: 10, output: 33 } });
    const m = await a.messages.stream({ model: 'c', max_tokens: 10, messages: [{ role: 'user', content: 'x' }] }).finalMessage();
    assert.deepEqual(
      m.content.map((b) => b.type),
      ['thinking', 'text', 'tool_use'],
    );
    assert.deepEqual((m.content[2] as { input: unknown }).input, { a: [1, 2] });
    assert.deepEqual([m.usage.input_tokens, m.usage.output_tokens, m.stop_reason], [10, 33, 'tool_use']);
    claude.script.push({ kind: 'error', status: 529, type: 'overloaded_error' });
    await assert.rejects(a.messages.create({ model: 'c', max_tokens: 10, messages: [{ role: 'user', content: 'x' }] }), (e: unknown) => e instanceof Anthropic.APIError && e.status === 529);
    claude.script.push({ kind: 'midStreamError', text: 'abc', type: 'overloaded_error', message: 'Overloaded' });
    await assert.rejects(a.messages.stream({ model: 'c', max_tokens: 10, messages: [{ role: 'user', content: 'x' }] }).finalMessage(), /Overloaded/);
    const bad = new Anthropic({ baseURL: claude.baseUrl, apiKey: 'wrong', maxRetries: 0 });
    await assert.rejects(bad.messages.create({ model: 'c', max_tokens: 10, messages: [{ role: 'user', content: 'x' }] }), (e: unknown) => e instanceof Anthropic.AuthenticationError);
  });

  it('anthropic: refuses what the real API refuses', async () => {
    const url = `${claude.baseUrl}/v1/messages`;
    const h = { 'x-api-key': 'k', 'anthropic-version': '2023-06-01' };
    const ok = { model: 'c', max_tokens: 5, messages: [{ role: 'user', content: 'x' }] };
    assert.equal((await post(url, ok, h)).status, 200);
    assert.equal((await post(url, ok, { 'x-api-key': 'k' })).status, 400, 'no anthropic-version');
    assert.equal((await post(url, { ...ok, max_tokens: undefined }, h)).json.error.message, 'max_tokens: Field required');
    const cases: Array<[unknown[], RegExp]> = [
      [[{ role: 'system', content: 'x' }], /role/],
      [[{ role: 'assistant', content: 'x' }], /first message/],
      [[{ role: 'user', content: 'a' }, { role: 'user', content: 'b' }], /alternate/],
      [[{ role: 'user', content: [{ type: 'text', text: '' }] }], /non-empty/],
      [[{ role: 'user', content: 'a' }, { role: 'assistant', content: [{ type: 'tool_use', id: 't1', name: 'f', input: '{}' }] }], /dictionary/],
      [
        [
          { role: 'user', content: 'a' },
          { role: 'assistant', content: [{ type: 'tool_use', id: 't1', name: 'f', input: {} }] },
          { role: 'user', content: [{ type: 'text', text: 'b' }, { type: 'tool_result', tool_use_id: 't1', content: 'r' }] },
        ],
        /come first/,
      ],
      [
        [
          { role: 'user', content: 'a' },
          { role: 'assistant', content: [{ type: 'tool_use', id: 't1', name: 'f', input: {} }] },
          { role: 'user', content: [{ type: 'tool_result', tool_use_id: 't2', content: 'r' }] },
        ],
        /unexpected `tool_use_id`/,
      ],
    ];
    for (const [messages, re] of cases) {
      const r = await post(url, { ...ok, messages }, h);
      assert.equal(r.status, 400, JSON.stringify(messages));
      assert.equal(r.json.type, 'error');
      assert.equal(r.json.error.type, 'invalid_request_error');
      assert.match(r.json.error.message, re);
    }
  });

  it('gemini: CRLF frames without [DONE], key by header or ?key=, Google errors, strict fields', async () => {
    const base = `${gem.baseUrl}/v1beta/models/gemini-x`;
    const body = { contents: [{ role: 'user', parts: [{ text: 'hi' }] }] };
    gem.script.push({ text: 'abcdef', usage: { prompt: 3, candidates: 6 } });
    const s = await post(`${base}:streamGenerateContent?alt=sse&key=g`, body);
    assert.equal(s.status, 200);
    assert.match(s.type, /text\/event-stream/);
    assert.ok(s.text.includes('\r\n\r\n') && !s.text.includes('[DONE]'));
    const frames = s.text.split('\r\n\r\n').filter(Boolean).map((f) => JSON.parse(f.replace(/^data: /, '')));
    assert.equal(frames.map((f) => f.candidates[0].content.parts[0].text).join(''), 'abcdef');
    assert.equal(frames.at(-1).candidates[0].finishReason, 'STOP');
    assert.equal(frames.at(-1).usageMetadata.candidatesTokenCount, 6);
    assert.equal((await post(`${base}:generateContent`, body)).status, 403, 'no key');
    const wrong = await post(`${base}:generateContent`, body, { 'x-goog-api-key': 'nope' });
    assert.equal(wrong.status, 400);
    assert.equal(wrong.json.error.details[0].reason, 'API_KEY_INVALID');
    const h = { 'x-goog-api-key': 'g' };
    assert.match((await post(`${base}:generateContent`, { ...body, max_tokens: 5 }, h)).json.error.message, /Unknown name "max_tokens"/);
    assert.match((await post(`${base}:generateContent`, { ...body, generationConfig: { max_output_tokens: 5 } }, h)).json.error.message, /Unknown name "max_output_tokens"/);
    assert.match((await post(`${base}:generateContent`, { contents: [{ role: 'assistant', parts: [{ text: 'x' }] }] }, h)).json.error.message, /valid role/);
    const unequal = {
      contents: [
        { role: 'user', parts: [{ text: 'x' }] },
        { role: 'model', parts: [{ functionCall: { name: 'a', args: {} } }, { functionCall: { name: 'b', args: {} } }] },
        { role: 'user', parts: [{ functionResponse: { name: 'a', response: {} } }] },
      ],
    };
    assert.match((await post(`${base}:generateContent`, unequal, h)).json.error.message, /number of function response parts/);
    const nf = await post(`${gem.baseUrl}/v1beta/models/missing-1:generateContent`, body, h);
    assert.deepEqual([nf.status, nf.json.error.status], [404, 'NOT_FOUND']);
  });

  it('ollama: NDJSON by default, one object with stream:false, Go decoder errors, unknown model 404', async () => {
    ollama.script.push({ text: 'hello there', usage: { prompt: 4, eval: 2 } });
    const s = await post(`${ollama.baseUrl}/api/chat`, { model: 'llama3', messages: [{ role: 'user', content: 'x' }] });
    assert.equal(s.type, 'application/x-ndjson');
    const lines = s.text.trim().split('\n').map((l) => JSON.parse(l));
    assert.equal(lines.map((l) => l.message.content).join(''), 'hello there');
    assert.deepEqual([lines.at(-1).done, lines.at(-1).done_reason, lines.at(-1).prompt_eval_count, lines.at(-1).eval_count], [true, 'stop', 4, 2]);
    assert.ok(lines.slice(0, -1).every((l) => l.done === false));
    const one = await post(`${ollama.baseUrl}/api/chat`, { model: 'llama3', stream: false, messages: [{ role: 'user', content: 'x' }] });
    assert.equal(one.json.message.content, 'echo: x');
    const badArgs = await post(`${ollama.baseUrl}/api/chat`, { model: 'llama3', messages: [{ role: 'assistant', content: '', tool_calls: [{ function: { name: 'f', arguments: '{"a":1}' } }] }] });
    assert.equal(badArgs.status, 400);
    assert.match(badArgs.json.error, /cannot unmarshal string/);
    const badImg = await post(`${ollama.baseUrl}/api/chat`, { model: 'llama3', messages: [{ role: 'user', content: 'x', images: ['data:image/png;base64,AAAA'] }] });
    assert.match(badImg.json.error, /illegal base64/);
    const nf = await post(`${ollama.baseUrl}/api/chat`, { model: 'missing-x', messages: [] });
    assert.equal(nf.status, 404);
    assert.match(nf.json.error, /not found/);
  });
});
