// Keys and failover on an ai route: a failing key leaves rotation and is
// probed back in; retries with another key (non-stream); cross-provider
// fallback on listed statuses; a stream falls back only before its first
// byte (first-byte timeout included) and never mixes two providers' output.
import assert from 'node:assert/strict';
import { after, afterEach, before, describe, it } from 'node:test';
import OpenAI from 'openai';
import type { Gateway } from '../../../src/gateway.js';
import { startOpenAILikeDouble, type LlmDouble } from '../../doubles/llm/openai-like.js';
import { startGateway, testConfig, waitFor } from '../../helpers/gateway.js';

function sdk(gw: Gateway): OpenAI {
  return new OpenAI({ baseURL: `${gw.listenerUrl()}/v1`, apiKey: 'client', maxRetries: 0 });
}

async function streamText(s: AsyncIterable<OpenAI.ChatCompletionChunk>): Promise<string> {
  let t = '';
  for await (const c of s) t += c.choices[0]?.delta?.content ?? '';
  return t;
}

function cfgRoute(d: LlmDouble): never {
  return {
    name: 'llm',
    match: { path: { prefix: '/v1/' } },
    ai: {
      providers: [{ name: 'p', type: 'openai', baseUrl: d.baseUrl, apiKeys: ['good-1', 'revoked', 'good-2'] }],
      retries: 2,
      keyFailover: { on: ['401', '429'], failureThreshold: 1, cooldownMs: 150, maxCooldownMs: 300 },
    },
  } as never;
}

describe('ai route: key rotation and failover', () => {
  let gw: Gateway;
  let d: LlmDouble;

  before(async () => {
    d = await startOpenAILikeDouble('openai', { keys: ['good-1', 'good-2'] });
    gw = await startGateway({ routes: [cfgRoute(d)] });
  });
  after(async () => {
    await gw?.stop();
    await d?.stop();
  });

  it('rotates keys, retries a 401 with the next key, then keeps the bad key out', async () => {
    const c = sdk(gw);
    for (let i = 0; i < 3; i++) await c.chat.completions.create({ model: 'm', messages: [{ role: 'user', content: `q${i}` }] });
    const chatKeys = d.received.filter((r) => r.method === 'POST').map((r) => r.key);
    assert.ok(chatKeys.includes('revoked'), 'the revoked key was tried once');
    assert.equal(chatKeys.filter((k) => k === 'revoked').length, 1);
    assert.ok(chatKeys.includes('good-1') && chatKeys.includes('good-2'), 'both good keys in rotation');
    const n = d.received.length;
    for (let i = 0; i < 6; i++) await c.chat.completions.create({ model: 'm', messages: [{ role: 'user', content: 'again' }] });
    const later = d.received.slice(n).filter((r) => r.method === 'POST').map((r) => r.key);
    assert.equal(later.length, 6, 'no retries needed: the bad key is out');
    assert.ok(!later.includes('revoked'));
  });

  it('a config reload keeps the bad key out', async () => {
    const r = await gw.reload(testConfig({ routes: [cfgRoute(d)] } as never) as never);
    assert.ok(r.ok);
    const n = d.received.length;
    const c = sdk(gw);
    for (let i = 0; i < 4; i++) await c.chat.completions.create({ model: 'm', messages: [{ role: 'user', content: 'after reload' }] });
    const later = d.received.slice(n).filter((r) => r.method === 'POST').map((r) => r.key);
    assert.equal(later.length, 4);
    assert.ok(!later.includes('revoked'));
  });

  it('probes the key that is out and takes it back once the provider accepts it', async () => {
    await waitFor(() => d.received.some((r) => r.method === 'GET' && r.url === '/v1/models' && r.key === 'revoked'), 5000);
    d.keys = ['good-1', 'good-2', 'revoked'];
    const c = sdk(gw);
    await waitFor(async () => {
      const n = d.received.length;
      await c.chat.completions.create({ model: 'm', messages: [{ role: 'user', content: 'back?' }] });
      return d.received.slice(n).some((r) => r.method === 'POST' && r.key === 'revoked');
    }, 5000);
  });
});

describe('ai route: cross-provider fallback', () => {
  let gw: Gateway;
  let a: LlmDouble;
  let b: LlmDouble;

  before(async () => {
    a = await startOpenAILikeDouble('openai');
    b = await startOpenAILikeDouble('openai');
    gw = await startGateway({
      routes: [
        {
          name: 'llm',
          match: { path: { prefix: '/v1/' } },
          ai: {
            providers: [
              // "stall-*" models reach a as a stream that never sends its first event.
              { name: 'a', type: 'openai', baseUrl: a.baseUrl, modelMapping: { 'stall-*': 'stall', 'cut-*': 'cut', 'hang-*': 'hang' }, firstByteTimeoutMs: 400, timeoutMs: 600 },
              { name: 'b', type: 'openai', baseUrl: b.baseUrl, modelMapping: { 'b-*': 'from-b', 'stall-*': 'b-model', 'cut-*': 'b-model', 'hang-*': 'b-model' } },
            ],
            models: { '*': 'a' },
            fallback: { on: ['429', '5xx', 'timeout'], order: ['a', 'b'] },
            retries: 0,
          },
        } as never,
      ],
    });
  });
  after(async () => {
    await gw?.stop();
    await a?.stop();
    await b?.stop();
  });
  afterEach(() => {
    a.failNext = [];
    b.failNext = [];
  });

  it('a 503 from the chosen provider falls back to the next, which applies its own modelMapping', async () => {
    a.failNext = [{ status: 503 }];
    const nb = b.chatCount();
    const r = await sdk(gw).chat.completions.create({ model: 'b-x', messages: [{ role: 'user', content: 'fallback' }] });
    assert.equal(r.choices[0]!.message.content, 'echo: fallback');
    assert.equal(b.chatCount(), nb + 1);
    assert.equal(b.received.at(-1)!.body!.model, 'from-b');
  });

  it('a status not listed (400) is answered as it is, without fallback', async () => {
    a.failNext = [{ status: 400, message: 'bad tool schema' }];
    const nb = b.chatCount();
    await assert.rejects(sdk(gw).chat.completions.create({ model: 'x', messages: [{ role: 'user', content: 'x' }] }), (e: unknown) => e instanceof OpenAI.BadRequestError && /bad tool schema/.test((e as Error).message));
    assert.equal(b.chatCount(), nb);
  });

  it('when every provider fails, the client gets the last failure in OpenAI shape', async () => {
    a.failNext = [{ status: 503 }];
    b.failNext = [{ status: 429 }];
    await assert.rejects(sdk(gw).chat.completions.create({ model: 'x', messages: [{ role: 'user', content: 'x' }] }), (e: unknown) => e instanceof OpenAI.RateLimitError);
  });

  it('a stream falls back before its first byte: a 503 head', async () => {
    a.failNext = [{ status: 503 }];
    const s = await sdk(gw).chat.completions.create({ model: 'x', messages: [{ role: 'user', content: 'stream fallback' }], stream: true });
    assert.equal(await streamText(s), 'echo: stream fallback');
  });

  it('a stream falls back when the first event does not come in time (first-byte timeout)', async () => {
    const closedBefore = a.closedEarly;
    const t0 = Date.now();
    const s = await sdk(gw).chat.completions.create({ model: 'stall-1', messages: [{ role: 'user', content: 'slow start' }], stream: true });
    assert.equal(await streamText(s), 'echo: slow start');
    assert.ok(Date.now() - t0 >= 350, 'waited for the first-byte timeout');
    await waitFor(() => a.closedEarly > closedBefore, 3000);
  });

  it('a non-stream call that gets no answer in time falls back (timeout)', async () => {
    const r = await sdk(gw).chat.completions.create({ model: 'hang-1', messages: [{ role: 'user', content: 'hung' }] });
    assert.equal(r.choices[0]!.message.content, 'echo: hung');
  });

  it('a stream cut after its first byte is not completed by another provider', async () => {
    const nb = b.chatCount();
    const s = await sdk(gw).chat.completions.create({ model: 'cut-1', messages: [{ role: 'user', content: 'abcdefghijk' }], stream: true });
    let text = '';
    await assert.rejects(
      (async () => {
        for await (const c of s) text += c.choices[0]?.delta?.content ?? '';
      })(),
      (e: unknown) => e instanceof OpenAI.APIError,
    );
    assert.equal(text, 'echo: abc', 'only the first provider, only what it sent');
    assert.equal(b.chatCount(), nb, 'no second provider after the first byte');
  });

  it('the gateway answers 504 when the provider does not answer in time, 502 when it cannot be reached', async () => {
    const gw2 = await startGateway({
      routes: [
        {
          name: 'llm',
          match: { path: { prefix: '/v1/' } },
          ai: {
            providers: [
              { name: 'slow', type: 'openai', baseUrl: a.baseUrl, timeoutMs: 300 },
              { name: 'gone', type: 'openai', baseUrl: 'http://127.0.0.1:1/v1' },
            ],
            models: { 'gone-*': 'gone' },
            retries: 0,
          },
        } as never,
      ],
    });
    try {
      await assert.rejects(sdk(gw2).chat.completions.create({ model: 'hang', messages: [{ role: 'user', content: 'x' }] }), (e: unknown) => e instanceof OpenAI.InternalServerError && e.status === 504 && e.code === 'upstream_timeout');
      await assert.rejects(sdk(gw2).chat.completions.create({ model: 'gone-1', messages: [{ role: 'user', content: 'x' }] }), (e: unknown) => e instanceof OpenAI.InternalServerError && e.status === 502 && e.code === 'upstream_unavailable');
    } finally {
      await gw2.stop();
    }
  });

  it('an error as the very first stream event counts as a failure and falls back', async () => {
    const gw2 = await startGateway({
      routes: [
        {
          name: 'llm',
          match: { path: { prefix: '/v1/' } },
          ai: {
            providers: [
              { name: 'a', type: 'openai', baseUrl: a.baseUrl, modelMapping: { '*': 'error-first' } },
              { name: 'b', type: 'openai', baseUrl: b.baseUrl },
            ],
            fallback: { on: ['5xx'], order: ['a', 'b'] },
          },
        } as never,
      ],
    });
    try {
      const s = await sdk(gw2).chat.completions.create({ model: 'x', messages: [{ role: 'user', content: 'overloaded a' }], stream: true });
      assert.equal(await streamText(s), 'echo: overloaded a');
    } finally {
      await gw2.stop();
    }
  });
});
