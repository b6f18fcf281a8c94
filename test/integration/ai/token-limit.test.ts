// Token rate limits (tokenRateLimit): checked before the call, charged after
// it with the provider's real count; refused with 429 in OpenAI's shape; per
// identity; shared between gateways through the Redis store.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import OpenAI from 'openai';
import type { Gateway } from '../../../src/gateway.js';
import { startOpenAILikeDouble, type LlmDouble } from '../../doubles/llm/openai-like.js';
import { startGateway } from '../../helpers/gateway.js';
import { startRedis, type RedisServer } from '../../helpers/redis.js';

function route(d: LlmDouble, store: 'local' | 'shared' = 'local'): unknown {
  return {
    name: 'llm',
    match: { path: { prefix: '/v1/' } },
    ai: {
      providers: [{ name: 'p', type: 'openai', baseUrl: d.baseUrl }],
      tokenRateLimit: { key: { header: 'x-team' }, tokensPerMinute: 200, store },
    },
  };
}

function client(gw: Gateway, team?: string): OpenAI {
  return new OpenAI({ baseURL: `${gw.listenerUrl()}/v1`, apiKey: 'x', maxRetries: 0, defaultHeaders: team ? { 'x-team': team } : {} });
}

/** ~250 tokens by the double's count (characters / 4 of the messages JSON). */
const BIG = 'x'.repeat(1000);

describe('ai route: token rate limit (local)', () => {
  let gw: Gateway;
  let d: LlmDouble;

  before(async () => {
    d = await startOpenAILikeDouble('openai');
    gw = await startGateway({ routes: [route(d) as never] });
  });
  after(async () => {
    await gw?.stop();
    await d?.stop();
  });

  it('admits a call while there is room, charges its real usage, then refuses with 429 in OpenAI shape', async () => {
    const a = client(gw, 'alpha');
    const r = await a.chat.completions.create({ model: 'm', messages: [{ role: 'user', content: BIG }] });
    assert.ok(r.usage!.total_tokens > 200, 'one call may overshoot: its cost is known only after it');
    const n = d.chatCount();
    await assert.rejects(a.chat.completions.create({ model: 'm', messages: [{ role: 'user', content: 'small' }] }), (e: unknown) => {
      assert.ok(e instanceof OpenAI.RateLimitError);
      assert.equal(e.code, 'rate_limit_exceeded');
      assert.equal(e.type, 'rate_limit_error');
      assert.ok(Number(e.headers?.get('retry-after')) >= 1);
      return true;
    });
    assert.equal(d.chatCount(), n, 'a refused call never reaches the provider');
  });

  it('counts per identity: another team still passes; a request without the key part is not limited', async () => {
    await client(gw, 'beta').chat.completions.create({ model: 'm', messages: [{ role: 'user', content: 'hi' }] });
    await client(gw).chat.completions.create({ model: 'm', messages: [{ role: 'user', content: BIG }] });
    await client(gw).chat.completions.create({ model: 'm', messages: [{ role: 'user', content: BIG }] });
  });

  it('charges streamed calls too (usage forced upstream)', async () => {
    const g = client(gw, 'gamma');
    const s = await g.chat.completions.create({ model: 'm', messages: [{ role: 'user', content: BIG }], stream: true });
    for await (const _ of s) {
      /* read */
    }
    await assert.rejects(g.chat.completions.create({ model: 'm', messages: [{ role: 'user', content: 'x' }] }), (e: unknown) => e instanceof OpenAI.RateLimitError);
  });
});

describe('ai route: token rate limit shared through Redis', () => {
  let redis: RedisServer;
  let gw1: Gateway;
  let gw2: Gateway;
  let d: LlmDouble;

  before(async () => {
    redis = await startRedis();
    d = await startOpenAILikeDouble('openai');
    const cfg = { store: { type: 'redis', redis: { url: redis.url, prefix: `t${Date.now()}:` } }, routes: [route(d, 'shared')] };
    gw1 = await startGateway(cfg as never);
    gw2 = await startGateway(cfg as never);
  });
  after(async () => {
    await gw1?.stop();
    await gw2?.stop();
    await d?.stop();
    await redis?.destroy();
  });

  it('tokens used through one gateway count at the other', async () => {
    await client(gw1, 'delta').chat.completions.create({ model: 'm', messages: [{ role: 'user', content: BIG }] });
    // The charge is made after the answer; give it its round trip.
    await new Promise((r) => setTimeout(r, 100));
    await assert.rejects(client(gw2, 'delta').chat.completions.create({ model: 'm', messages: [{ role: 'user', content: 'x' }] }), (e: unknown) => e instanceof OpenAI.RateLimitError);
    await client(gw2, 'epsilon').chat.completions.create({ model: 'm', messages: [{ role: 'user', content: 'x' }] });
  });
});

describe('ai route: config refused with the key named', () => {
  it('names the bad key', async () => {
    const bad: Array<[unknown, RegExp]> = [
      [{ providers: [{ name: 'x', type: 'azure', apiKeys: ['k'] }] }, /routes\[0\]\.ai: providers\[0\]\.baseUrl: required for type azure/],
      [{ providers: [{ name: 'x', type: 'openai' }], models: { '*': 'nope' } }, /models\["\*"\]: no provider named "nope"/],
      [{ providers: [{ name: 'x', type: 'openai' }], fallback: { order: ['x', 'y'] } }, /fallback\.order\[1\]: no provider named "y"/],
      [{ providers: [{ name: 'x', type: 'openai', modelMapping: { '~(': 'y' } }] }, /providers\[0\]\.modelMapping\["~\("\]: not a regular expression/],
      [{ providers: [{ name: 'x', type: 'openai', service: 'a.static' }] }, /providers\[0\]\.service: only openai_compatible/],
      [{ providers: [{ name: 'x', type: 'openai' }], tokenRateLimit: { key: 'ip' } }, /tokenRateLimit: give tokensPerMinute/],
      [{ providers: [{ name: 'x', type: 'openai' }], tokenRateLimit: { tokensPerMinute: 5, store: 'shared' } }, /tokenRateLimit: store: shared needs the redis store/],
      [{ providers: [{ name: 'x', type: 'openai' }, { name: 'x', type: 'qwen' }] }, /providers\[1\]\.name: "x" is used twice/],
    ];
    for (const [ai, re] of bad) {
      await assert.rejects(startGateway({ routes: [{ name: 'llm', match: { path: { prefix: '/v1/' } }, ai } as never] }), (e: unknown) => {
        assert.match((e as Error).message, re);
        return true;
      });
    }
    await assert.rejects(startGateway({ routes: [{ name: 'llm', ai: { providers: [{ name: 'x', type: 'nope' }] } } as never] }), /routes\[0\]\.ai\.providers\[0\]\.type/);
    await assert.rejects(startGateway({ routes: [{ name: 'llm', ai: { providers: [{ name: 'x', type: 'openai' }], fallback: { on: ['4o4'] } } } as never] }), /routes\[0\]\.ai\.fallback\.on\[0\]/);
  });
});
