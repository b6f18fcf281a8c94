// HTTP/2 flow control end to end: a 100 MB gRPC server stream to a slow
// reader passes through the gateway while the gateway's memory stays flat
// (the upstream is paused by withheld WINDOW_UPDATEs instead of being buffered).
import assert from 'node:assert/strict';
import { spawn, type ChildProcessByStdio } from 'node:child_process';
import type { Readable, Writable } from 'node:stream';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import v8 from 'node:v8';
import vm from 'node:vm';
import type { Gateway } from '../../../src/gateway.js';
import { startGateway } from '../../helpers/gateway.js';

const here = path.dirname(fileURLToPath(import.meta.url));

// Collect garbage before each sample: the measure is what the gateway holds,
// not how lazily the collector frees chunks that already passed through.
v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;
const rss = (): number => {
  gc();
  return process.memoryUsage().rss;
};

describe('gRPC flow control', () => {
  let peer: ChildProcessByStdio<Writable, Readable, null>;
  let lines: AsyncIterator<string>;
  let gw: Gateway;

  const next = async (prefix: string): Promise<string[]> => {
    for (;;) {
      const r = await lines.next();
      if (r.done) throw new Error('peer exited');
      if (r.value.startsWith('ERROR')) throw new Error(r.value);
      if (r.value.startsWith(prefix)) return r.value.split(' ').slice(1);
    }
  };

  before(async () => {
    peer = spawn(process.execPath, ['--import', 'tsx', path.join(here, 'stream-peer.ts')], { stdio: ['pipe', 'pipe', 'inherit'] });
    lines = createInterface({ input: peer.stdout })[Symbol.asyncIterator]();
    const [port] = await next('PORT');
    gw = await startGateway({
      registries: [{ name: 'peer', type: 'static', endpoints: [`127.0.0.1:${port}`] }],
      services: { 'peer.static': { protocol: 'grpc', timeoutMs: 120_000 } },
      routes: [{ name: 'grpc', match: { path: { prefix: '/test.Echo/' } }, backends: [{ service: 'peer.static' }], timeoutMs: 120_000 }],
    });
  });

  after(async () => {
    await gw?.stop();
    if (peer && peer.exitCode === null) {
      const exited = new Promise((r) => peer.once('exit', r));
      peer.stdin.end();
      const t = setTimeout(() => peer.kill(), 5_000);
      await exited;
      clearTimeout(t);
    }
  });

  it('a 100 MB server stream to a slow reader passes with bounded gateway memory', async () => {
    const target = new URL(gw.listenerUrl('public')).host;
    // Warm up (buffers, JIT) with a small stream, then take the baseline.
    peer.stdin.write(`GO ${target} 80 65536\n`);
    await next('DONE');
    const baseline = rss();
    let peak = baseline;
    const sampler = setInterval(() => (peak = Math.max(peak, rss())), 100);
    try {
      const count = 1600; // 1600 x 64 KiB = 100 MiB
      peer.stdin.write(`GO ${target} ${count} 65536\n`);
      const [messages, bytes] = await next('DONE');
      assert.equal(Number(messages), count);
      assert.equal(Number(bytes), count * 65536);
    } finally {
      clearInterval(sampler);
    }
    const growthMb = (peak - baseline) / 2 ** 20;
    // Buffering the stream would grow memory by ~100 MB; flow control keeps it to the windows.
    assert.ok(growthMb < 32, `gateway RSS grew by ${growthMb.toFixed(1)} MB while 100 MB passed`);
  });
});
