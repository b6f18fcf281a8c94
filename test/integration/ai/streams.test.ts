// Streams done right: a client that goes away cancels the provider call; a
// client that stops reading slows the provider (nothing piles up in the
// gateway); a reload cuts no stream; many streams at once; an
// openai_compatible provider that is a discovered service, balanced.
import assert from 'node:assert/strict';
import http from 'node:http';
import http2 from 'node:http2';
import { after, before, describe, it } from 'node:test';
import OpenAI from 'openai';
import type { Gateway } from '../../../src/gateway.js';
import { startOpenAILikeDouble, type LlmDouble } from '../../doubles/llm/openai-like.js';
import { startGateway, testConfig, waitFor } from '../../helpers/gateway.js';

/** A counter once it stopped moving: the same value over three samples 300 ms apart. */
async function settled(read: () => number): Promise<number> {
  const seen: number[] = [];
  await waitFor(async () => {
    await new Promise((r) => setTimeout(r, 300));
    seen.push(read());
    return seen.length >= 3 && seen.at(-1) === seen.at(-3);
  }, 15_000);
  return seen.at(-1)!;
}

function config(d: LlmDouble, extraRoute = false): Record<string, unknown> {
  const routes: unknown[] = [
    {
      name: 'llm',
      match: { path: { prefix: '/v1/' } },
      ai: { providers: [{ name: 'p', type: 'openai', baseUrl: d.baseUrl }] },
    },
  ];
  if (extraRoute) routes.push({ name: 'other', match: { path: { prefix: '/other/' } }, directResponse: { status: 200, body: 'ok' } });
  return { routes };
}

describe('ai route: streams', () => {
  let gw: Gateway;
  let d: LlmDouble;

  before(async () => {
    d = await startOpenAILikeDouble('openai');
    gw = await startGateway(config(d) as never);
  });
  after(async () => {
    await gw?.stop();
    await d?.stop();
  });

  it('a client that disconnects cancels the provider call', async () => {
    const closed = d.closedEarly;
    const ac = new AbortController();
    const c = new OpenAI({ baseURL: `${gw.listenerUrl()}/v1`, apiKey: 'x', maxRetries: 0 });
    const s = await c.chat.completions.create({ model: 'slow-100', messages: [{ role: 'user', content: 'x' }], stream: true }, { signal: ac.signal });
    let n = 0;
    try {
      for await (const _ of s) {
        if (++n === 2) ac.abort();
      }
    } catch {
      /* the SDK may end or throw on abort; either way the client is gone */
    }
    assert.ok(n < 40, 'the stream did not run to its end');
    await waitFor(() => d.closedEarly > closed, 3000);
  });

  it('a client that stops reading slows the provider; then it gets every chunk', async () => {
    const N = 50_000; // ~52 MB of chunks
    const u = new URL(gw.listenerUrl());
    const body = JSON.stringify({ model: `flood-${N}`, messages: [{ role: 'user', content: 'x' }], stream: true });
    const res = await new Promise<http.IncomingMessage>((resolve, reject) => {
      const req = http.request({ host: u.hostname, port: u.port, path: '/v1/chat/completions', method: 'POST', headers: { 'content-type': 'application/json' } }, resolve);
      req.on('error', reject);
      req.end(body);
    });
    assert.equal(res.statusCode, 200);
    assert.match(String(res.headers['content-type']), /text\/event-stream/);
    res.pause();
    // Socket buffers (provider->gateway, gateway->client) fill first; then the provider must stop.
    const whilePaused = await settled(() => d.flooded);
    await new Promise((r) => setTimeout(r, 600));
    // Buffers may still grow a little on a loaded machine (TCP autotuning); the provider must not run on.
    assert.ok(d.flooded - whilePaused < 500, `the provider is held while the client does not read (${whilePaused} then ${d.flooded})`);
    assert.ok(whilePaused < N / 4, `the provider was held early (${whilePaused} of ${N} written)`);
    let text = '';
    res.setEncoding('utf8');
    res.on('data', (c: string) => (text += c));
    res.resume();
    await new Promise((r) => res.on('end', r));
    const frames = text.split('\n\n').filter((f) => f.startsWith('data: '));
    assert.equal(frames.at(-1), 'data: [DONE]');
    const contents = frames.slice(0, -1).map((f) => JSON.parse(f.slice(6)) as { choices: Array<{ delta: { content?: string } }> });
    assert.equal(contents.filter((c) => c.choices[0]?.delta.content?.endsWith('x')).length, N, 'every chunk arrived');
  });

  it('a reload during a stream does not cut it', async () => {
    const c = new OpenAI({ baseURL: `${gw.listenerUrl()}/v1`, apiKey: 'x', maxRetries: 0 });
    const s = await c.chat.completions.create({ model: 'slow-25', messages: [{ role: 'user', content: 'x' }], stream: true });
    let text = '';
    let reloaded = false;
    for await (const ch of s) {
      text += ch.choices[0]?.delta?.content ?? '';
      if (!reloaded && text.length > 0) {
        reloaded = true;
        const r = await gw.reload(testConfig(config(d, true) as never) as never);
        assert.ok(r, 'reload applied');
      }
    }
    assert.ok(reloaded);
    assert.equal(text, Array.from({ length: 40 }, (_, i) => `s${i} `).join(''));
    const after = await fetch(`${gw.listenerUrl()}/other/x`);
    assert.equal(await after.text(), 'ok', 'the new config serves');
  });

  it('an HTTP/2 (h2c) client gets the same stream, and a slow one holds the provider too', async () => {
    const session = http2.connect(gw.listenerUrl());
    try {
      const N = 30_000;
      const req = session.request({ ':method': 'POST', ':path': '/v1/chat/completions', 'content-type': 'application/json' });
      req.end(JSON.stringify({ model: `flood-${N}`, messages: [{ role: 'user', content: 'x' }], stream: true }));
      const head = await new Promise<http2.IncomingHttpHeaders>((r) => req.once('response', r));
      assert.equal(head[':status'], 200);
      assert.match(String(head['content-type']), /text\/event-stream/);
      req.pause();
      const held = await settled(() => d.flooded);
      assert.ok(held < N / 2, `the provider was held (${held} of ${N} written)`);
      let text = '';
      req.setEncoding('utf8');
      req.on('data', (c: string) => (text += c));
      req.resume();
      await new Promise((r) => req.on('end', r));
      assert.ok(text.endsWith('data: [DONE]\n\n'));
      assert.equal(text.split('\n\n').filter((f) => f.includes('"content":"') && f.includes('xxxx')).length, N);
    } finally {
      session.close();
    }
  });

  it('200 concurrent streams all complete intact', async () => {
    const c = new OpenAI({ baseURL: `${gw.listenerUrl()}/v1`, apiKey: 'x', maxRetries: 0 });
    const texts = await Promise.all(
      Array.from({ length: 200 }, async (_, i) => {
        const s = await c.chat.completions.create({ model: 'long-20', messages: [{ role: 'user', content: `n${i}` }], stream: true });
        let t = '';
        for await (const ch of s) t += ch.choices[0]?.delta?.content ?? '';
        return t;
      }),
    );
    const want = Array.from({ length: 20 }, (_, i) => `w${i} `).join('');
    assert.ok(texts.every((t) => t === want));
  });
});

describe('ai route: openai_compatible on a discovered service', () => {
  let gw: Gateway;
  let v1: LlmDouble;
  let v2: LlmDouble;

  before(async () => {
    v1 = await startOpenAILikeDouble('vllm');
    v2 = await startOpenAILikeDouble('vllm');
    gw = await startGateway({
      registries: [{ name: 'vllm', type: 'static', endpoints: [`127.0.0.1:${v1.port}`, `127.0.0.1:${v2.port}`] }],
      services: { 'vllm.static': { loadBalancer: { type: 'round_robin' } } },
      routes: [
        {
          name: 'llm',
          match: { path: { prefix: '/v1/' } },
          ai: { providers: [{ name: 'local', type: 'openai_compatible', service: 'vllm.static' }] },
        } as never,
      ],
    } as never);
  });
  after(async () => {
    await gw?.stop();
    await v1?.stop();
    await v2?.stop();
  });

  it('balances calls over the service instances, on /v1 of each', async () => {
    const c = new OpenAI({ baseURL: `${gw.listenerUrl()}/v1`, apiKey: 'x', maxRetries: 0 });
    for (let i = 0; i < 6; i++) {
      const r = await c.chat.completions.create({ model: 'Qwen/Qwen2.5-7B', messages: [{ role: 'user', content: `hi ${i}` }] });
      assert.equal(r.choices[0]!.message.content, `echo: hi ${i}`);
    }
    assert.equal(v1.chatCount(), 3);
    assert.equal(v2.chatCount(), 3);
    assert.equal(v1.received[0]!.url, '/v1/chat/completions');
    assert.equal(v1.received[0]!.headers.authorization, undefined, 'no key configured: no auth sent');
  });

  it('an instance that refuses connections is skipped by a retry on the next one', async () => {
    await v2.stop();
    const c = new OpenAI({ baseURL: `${gw.listenerUrl()}/v1`, apiKey: 'x', maxRetries: 0 });
    const n1 = v1.chatCount();
    for (let i = 0; i < 4; i++) {
      const r = await c.chat.completions.create({ model: 'm', messages: [{ role: 'user', content: 'still' }] });
      assert.equal(r.choices[0]!.message.content, 'echo: still');
    }
    assert.equal(v1.chatCount(), n1 + 4);
  });
});
