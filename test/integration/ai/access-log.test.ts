// The access-log line of an AI call carries an `ai` object: provider, models,
// tokens (estimated or not), time to first token, providers tried.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import OpenAI from 'openai';
import type { Gateway } from '../../../src/gateway.js';
import { startOpenAILikeDouble, type LlmDouble } from '../../doubles/llm/openai-like.js';
import { startGateway, waitFor } from '../../helpers/gateway.js';

describe('ai route: access log', () => {
  let gw: Gateway;
  let a: LlmDouble;
  let b: LlmDouble;
  const lines: Array<Record<string, any>> = [];

  before(async () => {
    a = await startOpenAILikeDouble('openai');
    b = await startOpenAILikeDouble('mistral');
    gw = await startGateway(
      {
        log: { level: 'info', access: true },
        routes: [
          {
            name: 'llm',
            match: { path: { prefix: '/v1/' } },
            ai: {
              providers: [
                { name: 'a', type: 'openai', baseUrl: a.baseUrl, modelMapping: { 'gpt-4o': 'a-model' } },
                { name: 'b', type: 'mistral', baseUrl: b.baseUrl, modelMapping: { 'gpt-4o': 'mistral-small' } },
              ],
              fallback: { on: ['5xx'], order: ['a', 'b'] },
            },
          } as never,
        ],
      },
      { accessLog: { write: (l: string) => void lines.push(...l.split('\n').filter(Boolean).map((x) => JSON.parse(x))) } },
    );
  });
  after(async () => {
    await gw?.stop();
    await a?.stop();
    await b?.stop();
  });

  it('logs provider, models and tokens of a streamed call', async () => {
    const c = new OpenAI({ baseURL: `${gw.listenerUrl()}/v1`, apiKey: 'x', maxRetries: 0 });
    const s = await c.chat.completions.create({ model: 'gpt-4o', messages: [{ role: 'user', content: 'log me' }], stream: true });
    for await (const _ of s) {
      /* read */
    }
    const line = (await waitFor(() => lines.find((l) => l.ai?.stream === true)))!;
    assert.equal(line.route, 'llm');
    assert.equal(line.status, 200);
    assert.equal(line.ai.provider, 'a');
    assert.equal(line.ai.model, 'gpt-4o');
    assert.equal(line.ai.upstreamModel, 'a-model');
    assert.ok(line.ai.inputTokens > 0 && line.ai.outputTokens > 0);
    assert.equal(line.ai.totalTokens, line.ai.inputTokens + line.ai.outputTokens);
    assert.equal(line.ai.estimated, undefined);
    assert.ok(line.ai.ttftMs > 0);
  });

  it('logs the providers tried on a fallback, and estimated usage as such', async () => {
    a.failNext = [{ status: 500 }];
    const c = new OpenAI({ baseURL: `${gw.listenerUrl()}/v1`, apiKey: 'x', maxRetries: 0 });
    await c.chat.completions.create({ model: 'no-usage', messages: [{ role: 'user', content: 'fall back and estimate' }] });
    const line = (await waitFor(() => lines.find((l) => l.ai?.provider === 'b')))!;
    assert.deepEqual(line.ai.providersTried, ['a', 'b']);
    assert.equal(line.ai.upstreamModel, 'no-usage');
    assert.equal(line.ai.estimated, true);
    assert.ok(line.ai.inputTokens > 0);
    assert.equal(line.attempts, 2);
  });
});
