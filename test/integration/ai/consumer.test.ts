// AI routes behind key_auth: the consumer labels the token metrics and the
// access log, and keys the token rate limit.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import OpenAI from 'openai';
import type { Gateway } from '../../../src/gateway.js';
import { startOpenAILikeDouble, type LlmDouble } from '../../doubles/llm/openai-like.js';
import { startGateway } from '../../helpers/gateway.js';

const KEY_A = 'team-a-key-0123456789';
const KEY_B = 'team-b-key-0123456789';

describe('ai route: consumers', () => {
  let gw: Gateway;
  let d: LlmDouble;
  const client = (key: string) => new OpenAI({ baseURL: `${gw.listenerUrl()}/v1`, apiKey: 'unused', maxRetries: 0, defaultHeaders: { 'x-api-key': key } });

  before(async () => {
    d = await startOpenAILikeDouble('openai');
    gw = await startGateway({
      consumers: [
        { name: 'team-a', credentials: [{ type: 'key_auth', key: KEY_A }] },
        { name: 'team-b', credentials: [{ type: 'key_auth', key: KEY_B }] },
      ],
      routes: [
        {
          name: 'llm',
          match: { path: { prefix: '/v1/' } },
          filters: [{ type: 'key_auth' }],
          ai: { providers: [{ name: 'p', type: 'openai', baseUrl: d.baseUrl }], tokenRateLimit: { key: 'consumer', tokensPerMinute: 150 } },
        },
      ],
    } as never);
  });
  after(async () => {
    await gw?.stop();
    await d?.stop();
  });

  it('labels tokens with the consumer and limits each consumer on its own', async () => {
    await client(KEY_A).chat.completions.create({ model: 'm', messages: [{ role: 'user', content: 'y'.repeat(800) }] });
    const text = await gw.metrics.registry.metrics();
    assert.match(text, /meshgate_ai_tokens_total\{[^}]*consumer="team-a"[^}]*kind="input"[^}]*\} [1-9]/);
    await assert.rejects(client(KEY_A).chat.completions.create({ model: 'm', messages: [{ role: 'user', content: 'x' }] }), (e: unknown) => e instanceof OpenAI.RateLimitError);
    const r = await client(KEY_B).chat.completions.create({ model: 'm', messages: [{ role: 'user', content: 'b' }] });
    assert.equal(r.choices[0]!.message.content, 'echo: b');
    const after = await gw.metrics.registry.metrics();
    assert.match(after, /meshgate_ai_requests_total\{[^}]*consumer="team-a"[^}]*code="429"\} 1/);
    assert.match(after, /meshgate_ai_duration_seconds_count\{[^}]*consumer="team-b"[^}]*\} 1/);
  });

  it('an unknown key never reaches the provider', async () => {
    const n = d.chatCount();
    await assert.rejects(client('wrong-key-0123456789').chat.completions.create({ model: 'm', messages: [{ role: 'user', content: 'x' }] }), (e: unknown) => e instanceof OpenAI.AuthenticationError);
    assert.equal(d.chatCount(), n);
  });
});
