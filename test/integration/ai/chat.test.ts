// The OpenAI surface of an ai route, driven by the real `openai` SDK through
// a real gateway to the OpenAI-like provider double: chat (plain, streamed,
// tools), usage relocation and the include_usage contract, errors, models,
// embeddings (float and base64), the Responses API pass-through.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import OpenAI from 'openai';
import type { Gateway } from '../../../src/gateway.js';
import { startOpenAILikeDouble, type LlmDouble } from '../../doubles/llm/openai-like.js';
import { startGateway, waitFor } from '../../helpers/gateway.js';

describe('ai route: OpenAI chat through the openai SDK', () => {
  let gw: Gateway;
  let lab: LlmDouble;
  let client: OpenAI;

  before(async () => {
    lab = await startOpenAILikeDouble('openai', { keys: ['sk-lab'] });
    gw = await startGateway({
      routes: [
        {
          name: 'llm',
          match: { path: { prefix: '/v1/' } },
          ai: {
            providers: [{ name: 'lab', type: 'openai', baseUrl: lab.baseUrl, apiKeys: ['sk-lab'], modelMapping: { 'gpt-4o': 'lab-large', 'alias-*': 'lab-small' } }],
            retries: 0,
          },
        } as never,
      ],
    });
    client = new OpenAI({ baseURL: `${gw.listenerUrl()}/v1`, apiKey: 'client-key', maxRetries: 0 });
  });
  after(async () => {
    await gw?.stop();
    await lab?.stop();
  });

  it('answers a chat completion with the provider key, the mapped model and the provider usage', async () => {
    const r = await client.chat.completions.create({ model: 'gpt-4o', messages: [{ role: 'user', content: 'hello there' }] });
    assert.equal(r.choices[0]!.message.content, 'echo: hello there');
    assert.ok(r.usage && r.usage.total_tokens > 0);
    const got = lab.received.at(-1)!;
    assert.equal(got.url, '/v1/chat/completions');
    assert.equal(got.key, 'sk-lab', 'the provider key replaces the client one');
    assert.equal(got.body!.model, 'lab-large');
    assert.equal(got.headers.authorization, 'Bearer sk-lab');
  });

  it('maps by prefix and passes unknown models through unchanged', async () => {
    await client.chat.completions.create({ model: 'alias-anything', messages: [{ role: 'user', content: 'x' }] });
    assert.equal(lab.received.at(-1)!.body!.model, 'lab-small');
    await client.chat.completions.create({ model: 'other', messages: [{ role: 'user', content: 'x' }] });
    assert.equal(lab.received.at(-1)!.body!.model, 'other');
  });

  it('streams; forces include_usage upstream and strips the usage chunk the client did not ask for', async () => {
    const s = await client.chat.completions.create({ model: 'gpt-4o', messages: [{ role: 'user', content: 'stream me' }], stream: true });
    let text = '';
    let sawUsage = false;
    let sawEmptyChoices = false;
    for await (const c of s) {
      if (c.choices.length === 0) sawEmptyChoices = true;
      if (c.usage) sawUsage = true;
      text += c.choices[0]?.delta?.content ?? '';
    }
    assert.equal(text, 'echo: stream me');
    assert.equal(sawEmptyChoices, false, 'no choices:[] chunk for a client that did not ask');
    assert.equal(sawUsage, false);
    assert.equal(lab.received.at(-1)!.body!.stream_options.include_usage, true, 'usage forced upstream');
  });

  it('keeps the usage chunk for a client that asked', async () => {
    const s = await client.chat.completions.create({ model: 'gpt-4o', messages: [{ role: 'user', content: 'count me' }], stream: true, stream_options: { include_usage: true } });
    const usages: OpenAI.CompletionUsage[] = [];
    let text = '';
    for await (const c of s) {
      if (c.usage) usages.push(c.usage);
      text += c.choices[0]?.delta?.content ?? '';
    }
    assert.equal(text, 'echo: count me');
    assert.equal(usages.length, 1);
    assert.ok(usages[0]!.prompt_tokens > 0 && usages[0]!.completion_tokens > 0);
  });

  it('streams tool-call fragments the SDK assembles into one call', async () => {
    const final = await client.chat.completions
      .stream({ model: 'tools', messages: [{ role: 'user', content: 'weather?' }], tools: [{ type: 'function', function: { name: 'get_weather', parameters: { type: 'object', properties: { city: { type: 'string' } } } } }] })
      .finalChatCompletion();
    const call = final.choices[0]!.message.tool_calls![0]!;
    assert.equal(call.type, 'function');
    assert.equal((call as { function: { name: string } }).function.name, 'get_weather');
    assert.deepEqual(JSON.parse((call as { function: { arguments: string } }).function.arguments), { city: 'Paris', unit: 'celsius' });
    assert.equal(final.choices[0]!.finish_reason, 'tool_calls');
  });

  it('maps provider errors to the SDK error classes with code and type', async () => {
    await assert.rejects(client.chat.completions.create({ model: 'err-404', messages: [{ role: 'user', content: 'x' }] }), (e: unknown) => e instanceof OpenAI.NotFoundError && e.code === 'model_not_found');
    await assert.rejects(client.chat.completions.create({ model: 'err-429', messages: [{ role: 'user', content: 'x' }] }), (e: unknown) => e instanceof OpenAI.RateLimitError && e.code === 'rate_limit_exceeded');
    await assert.rejects(client.chat.completions.create({ model: 'err-500', messages: [{ role: 'user', content: 'x' }] }), (e: unknown) => e instanceof OpenAI.InternalServerError);
    await assert.rejects(client.chat.completions.create({ model: 'err-401', messages: [{ role: 'user', content: 'x' }] }), (e: unknown) => e instanceof OpenAI.AuthenticationError);
  });

  it('refuses bad requests in OpenAI shape', async () => {
    const r = await fetch(`${gw.listenerUrl()}/v1/chat/completions`, { method: 'POST', body: '{"messages":[]}', headers: { 'content-type': 'application/json' } });
    assert.equal(r.status, 400);
    const b = (await r.json()) as { error: { message: string; type: string; param: string | null; code: string | null } };
    assert.equal(b.error.type, 'invalid_request_error');
    assert.equal(b.error.param, 'model');
    const r2 = await fetch(`${gw.listenerUrl()}/v1/chat/completions`, { method: 'POST', body: 'not json' });
    assert.equal(r2.status, 400);
    assert.equal(((await r2.json()) as { error: { code: string } }).error.code, 'invalid_json');
    const r3 = await fetch(`${gw.listenerUrl()}/v1/nothing-here`, { method: 'POST', body: '{}' });
    assert.equal(r3.status, 404);
    assert.ok(((await r3.json()) as { error: { message: string } }).error.message);
  });

  it('a mid-stream provider error reaches the SDK as an APIError after the text before it', async () => {
    const s = await client.chat.completions.create({ model: 'mid-error', messages: [{ role: 'user', content: 'abcdefghijk' }], stream: true });
    let text = '';
    await assert.rejects(
      (async () => {
        for await (const c of s) text += c.choices[0]?.delta?.content ?? '';
      })(),
      (e: unknown) => e instanceof OpenAI.APIError && /crashed/.test((e as Error).message),
    );
    assert.equal(text, 'echo: abc', 'the two chunks before the error');
  });

  it('a stream the provider cuts ends with an error event, not a silent truncation', async () => {
    const s = await client.chat.completions.create({ model: 'cut', messages: [{ role: 'user', content: 'abcdefghijk' }], stream: true });
    await assert.rejects(
      (async () => {
        for await (const _ of s) {
          /* read */
        }
      })(),
      (e: unknown) => e instanceof OpenAI.APIError,
    );
  });

  it('a client that gives up on a non-stream call cancels the provider call', async () => {
    const closed = lab.closedEarly;
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 200);
    await assert.rejects(client.chat.completions.create({ model: 'hang', messages: [{ role: 'user', content: 'x' }] }, { signal: ac.signal }));
    await waitFor(() => lab.closedEarly > closed, 3000);
  });

  it('refuses a body over maxBodyBytes with 413 before calling the provider', async () => {
    const n = lab.chatCount();
    const r = await fetch(`${gw.listenerUrl()}/v1/chat/completions`, { method: 'POST', body: JSON.stringify({ model: 'm', messages: [{ role: 'user', content: 'z'.repeat(9 * 1024 * 1024) }] }) });
    assert.equal(r.status, 413);
    assert.equal(((await r.json()) as { error: { code: string } }).error.code, 'request_too_large');
    assert.equal(lab.chatCount(), n);
  });

  it('lists the models the route serves (exact names only)', async () => {
    const list = await client.models.list();
    const ids = list.data.map((m) => m.id).sort();
    assert.deepEqual(ids, ['gpt-4o']);
    assert.equal(list.data[0]!.owned_by, 'lab');
    assert.equal((await client.models.retrieve('gpt-4o')).id, 'gpt-4o');
    await assert.rejects(client.models.retrieve('nope'), (e: unknown) => e instanceof OpenAI.NotFoundError && e.code === 'model_not_found');
  });

  it('embeddings: base64 (the SDK default) and float both decode to the provider vectors', async () => {
    const b = await client.embeddings.create({ model: 'emb', input: ['abc', 'hello'] });
    assert.equal(b.data.length, 2);
    assert.deepEqual(b.data[1]!.embedding, [5, 1.5, -1.25, Math.fround(0.1)]);
    assert.equal(lab.received.at(-1)!.body!.encoding_format, undefined, 'floats asked upstream');
    const f = await client.embeddings.create({ model: 'emb', input: 'abcd', encoding_format: 'float' });
    assert.deepEqual(f.data[0]!.embedding, [4, 0.5, -1.25, 0.1]);
    assert.ok(f.usage.prompt_tokens > 0);
  });

  it('passes the Responses API through, streamed and not', async () => {
    const r = await client.responses.create({ model: 'gpt-4o', input: 'hi' });
    assert.equal(r.output_text, 'echo: hi');
    assert.equal(lab.received.at(-1)!.url, '/v1/responses');
    assert.equal(lab.received.at(-1)!.body!.model, 'lab-large');
    const s = await client.responses.create({ model: 'gpt-4o', input: 'yo', stream: true });
    const types: string[] = [];
    for await (const e of s) types.push(e.type);
    assert.deepEqual(types, ['response.created', 'response.output_text.delta', 'response.completed']);
  });

  it('exports tokens by route, provider, model, consumer and kind', async () => {
    const text = await gw.metrics.registry.metrics();
    const line = text.split('\n').find((l) => l.startsWith('meshgate_ai_tokens_total{') && l.includes('model="lab-large"') && l.includes('kind="input"'));
    assert.ok(line, 'a token series for the mapped model');
    assert.match(line!, /route="llm"/);
    assert.match(line!, /provider="lab"/);
    assert.match(line!, /consumer=""/);
    assert.ok(Number(line!.split(' ').at(-1)) > 0);
    assert.match(text, /meshgate_ai_time_to_first_token_seconds_count\{[^}]*provider="lab"/);
  });
});
