// An HTTP/2 answer given before the request body was read (no route, a WAF
// refusal, a 413) is complete while the client may still be sending. The
// gateway then resets the stream with NO_ERROR (RFC 9113 8.1) after the whole
// response, so the client stops sending instead of waiting for a window
// nobody will open; a client that sent its whole body gets no reset.
// Read on the wire: the frames' order is what the RFC asks for.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http2 from 'node:http2';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Gateway } from '../../../src/gateway.js';
import { startGateway } from '../../helpers/gateway.js';
import { CODE, dataFrame, FLAG, FRAME, headersFrame, RawH2, requestFields } from './h2-wire.js';
import { startRecordingUpstream, type RecordingUpstream } from './h2-upstream.js';

/** The frames of one stream, as `TYPE[+END_STREAM]` (RST_STREAM with its code). */
function sequence(c: RawH2, streamId: number): string[] {
  return c.frames
    .filter((f) => f.streamId === streamId && f.type !== FRAME.WINDOW_UPDATE)
    .map((f) => {
      if (f.type === FRAME.RST_STREAM) return `RST_STREAM(${f.payload.readUInt32BE(0)})`;
      const name = f.type === FRAME.HEADERS ? 'HEADERS' : f.type === FRAME.DATA ? 'DATA' : `type${f.type}`;
      return f.flags & FLAG.END_STREAM ? `${name}+END` : name;
    })
    // Empty DATA frames without END_STREAM say nothing about order.
    .filter((s, i, all) => s !== 'DATA' || all.indexOf(s) === i);
}

describe('HTTP/2: an answer before the body', () => {
  let up: RecordingUpstream;
  let gw: Gateway;
  let port: number;
  let rulesDir: string;
  before(async () => {
    up = await startRecordingUpstream();
    // A WAF with one rule that never matches: it reads up to 1 KiB of a body and refuses a larger one (413).
    rulesDir = mkdtempSync(path.join(os.tmpdir(), 'meshgate-h2-early-'));
    writeFileSync(path.join(rulesDir, 'REQUEST-900-ONE.conf'), 'SecRule REQUEST_URI "@rx ^/never$" "id:900001,phase:2,deny,status:403"\n');
    gw = await startGateway({
      listeners: [{ name: 'public', address: '127.0.0.1:0', protocol: 'http' }],
      registries: [{ name: 'up', type: 'static', endpoints: [up.address] }],
      routes: [
        { name: 'known', match: { path: { prefix: '/known' } }, backends: [{ service: 'up.static' }] },
        { name: 'waf', match: { path: { prefix: '/waf' } }, backends: [{ service: 'up.static' }], filters: [{ type: 'waf', rulesDir, bodyLimit: 1024, bodyOverLimit: 'reject' }] },
      ],
    });
    port = Number(new URL(gw.listenerUrl('public')).port);
  });
  after(async () => {
    await gw?.stop();
    await up?.close();
    rmSync(rulesDir, { recursive: true, force: true });
  });

  for (const [where, trailers] of [['/nowhere', false], ['/nowhere', true], ['/waf/upload', false], ['/waf/upload', true]] as const) {
    const what = where === '/waf/upload' ? 'a 413 after reading part of the body' : 'a 404 before reading any of it';
    it(`${what}: the stream is reset with NO_ERROR after the whole response${trailers ? ' (a client that takes trailers)' : ''}, while the client still sends`, async () => {
      const c = await RawH2.connect(port);
      try {
        const fields: Array<[string, string]> = [...requestFields(where, 'POST'), ['content-type', 'application/octet-stream']];
        if (trailers) fields.push(['te', 'trailers']);
        c.write(headersFrame(1, fields, false), dataFrame(1, Buffer.alloc(4096, 0x61), false));
        await c.until(() => c.rstCode(1) !== undefined, 5_000, 'RST_STREAM on stream 1');
        assert.equal(c.rstCode(1), CODE.NO_ERROR);
        // The gateway's answer is whole at once: no trailers to wait for, even for a client that takes them.
        const want = ['HEADERS', 'DATA+END', 'RST_STREAM(0)'];
        assert.deepEqual(sequence(c, 1), want);
        // 404 is in HPACK's static table; 413 is not (status() reads 0 for it).
        assert.equal(c.status(1), where === '/nowhere' ? 404 : 0);
        assert.ok(!up.seen.some((r) => r.url === where), 'nothing went upstream');
        assert.equal(c.goaway(), undefined, 'the connection goes on');
      } finally {
        c.close();
      }
    });
  }

  it('does not reset a stream whose body the client sent whole, nor a GET', async () => {
    const c = await RawH2.connect(port);
    try {
      c.write(headersFrame(1, [...requestFields('/nowhere', 'POST'), ['content-type', 'text/plain']], false), dataFrame(1, 'all of it', true));
      c.write(headersFrame(3, requestFields('/nowhere'), true));
      c.write(headersFrame(5, [...requestFields('/known/upload', 'POST'), ['content-type', 'text/plain']], false), dataFrame(5, 'all of it', true));
      for (const id of [1, 3, 5]) await c.outcome(id);
      // A reset would follow the response at once: give it the time to show.
      await new Promise((r) => setTimeout(r, 200));
      assert.deepEqual([c.rstCode(1), c.rstCode(3), c.rstCode(5)], [undefined, undefined, undefined]);
      assert.equal(sequence(c, 5).at(-1), 'DATA+END');
    } finally {
      c.close();
    }
  });

  for (const [where, status, flag] of [['/nowhere', 404, 'NR'], ['/waf/upload', 413, 'WAF']] as const) {
  it(`a node:http2 client sending without end gets the whole ${status} and then its stream closed without error`, async () => {
    const session = http2.connect(gw.listenerUrl('public'));
    try {
      const req = session.request({ ':method': 'POST', ':path': where, 'content-type': 'application/octet-stream' });
      let sent = 0;
      const chunk = Buffer.alloc(16_384, 0x61);
      const pump = (): void => {
        while (!req.destroyed && sent < 64 * 1024 * 1024) {
          sent += chunk.length;
          if (!req.write(chunk)) {
            req.once('drain', pump);
            return;
          }
        }
      };
      pump();
      const got = await new Promise<{ status: number; body: string; rstCode: number }>((resolve, reject) => {
        let status = 0;
        let body = '';
        req.on('response', (h) => (status = Number(h[':status'])));
        req.setEncoding('utf8');
        req.on('data', (d: string) => (body += d));
        req.on('error', reject);
        req.on('close', () => resolve({ status, body, rstCode: req.rstCode }));
        setTimeout(() => reject(new Error(`stream still open after 5 s, ${sent} bytes sent`)), 5_000).unref();
      });
      assert.equal(got.status, status);
      assert.match(got.body, new RegExp(`"flag":"${flag}"`));
      assert.equal(got.rstCode, http2.constants.NGHTTP2_NO_ERROR);
      assert.ok(sent < 64 * 1024 * 1024, 'the client stopped sending');
    } finally {
      session.destroy();
    }
  });
  }
});
