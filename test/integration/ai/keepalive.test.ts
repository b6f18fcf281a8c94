// A provider that closes a kept-alive connection just as the gateway reuses
// it (its idle timeout racing the gateway's) must not fail the call: the
// request never reached the provider, so the gateway sends it again on a new
// connection. Streams have no retries otherwise, so this is the only way the
// call can succeed.
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import OpenAI from 'openai';
import type { Gateway } from '../../../src/gateway.js';
import { startGateway } from '../../helpers/gateway.js';

describe('ai route: a stale kept-alive provider connection', () => {
  let gw: Gateway;
  let server: http.Server;
  const perSocket = new Map<Socket, number>();
  let dropped = 0;
  let answered = 0;

  before(async () => {
    server = http.createServer((req, res) => {
      const n = (perSocket.get(req.socket) ?? 0) + 1;
      perSocket.set(req.socket, n);
      if (n === 2) {
        // The second request on a connection: the provider "had closed" it.
        dropped++;
        req.socket.destroy();
        return;
      }
      req.resume();
      req.on('end', () => {
        answered++;
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        const base = { id: 'c', object: 'chat.completion.chunk', created: 1, model: 'm' };
        res.write(`data: ${JSON.stringify({ ...base, choices: [{ index: 0, delta: { role: 'assistant', content: 'ok' }, finish_reason: null }] })}\n\n`);
        res.write(`data: ${JSON.stringify({ ...base, choices: [{ index: 0, delta: {}, finish_reason: 'stop' }] })}\n\n`);
        res.end('data: [DONE]\n\n');
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    const port = (server.address() as AddressInfo).port;
    gw = await startGateway({ routes: [{ name: 'llm', match: { path: { prefix: '/v1/' } }, ai: { providers: [{ name: 'p', type: 'openai', baseUrl: `http://127.0.0.1:${port}/v1` }] } } as never] });
  });
  after(async () => {
    await gw?.stop();
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  });

  it('sends the call again on a new connection', async () => {
    const c = new OpenAI({ baseURL: `${gw.listenerUrl()}/v1`, apiKey: 'x', maxRetries: 0 });
    for (let i = 0; i < 3; i++) {
      const s = await c.chat.completions.create({ model: 'm', messages: [{ role: 'user', content: 'x' }], stream: true });
      let t = '';
      for await (const ch of s) t += ch.choices[0]?.delta?.content ?? '';
      assert.equal(t, 'ok');
    }
    assert.ok(dropped >= 1, 'a reused connection was dropped');
    assert.equal(answered, 3);
  });
});
