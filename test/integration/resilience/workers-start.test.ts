// With --workers, a start that cannot succeed is said once, clearly, by the
// primary: no fatal stack per worker, no "starting a new one" loop; and a
// SIGTERM during start leaves no EPIPE traces behind.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { freePort } from '../../helpers/upstream.js';

function run(args: string[], killAfterMs?: number): Promise<{ code: number | null; out: string; ms: number }> {
  return new Promise((resolve) => {
    const t0 = Date.now();
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli.ts', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    if (killAfterMs !== undefined) setTimeout(() => child.kill('SIGTERM'), killAfterMs);
    child.on('exit', (code) => {
      clearTimeout(timer);
      // Give orphaned workers a moment to write anything they would.
      setTimeout(() => resolve({ code, out, ms: Date.now() - t0 }), 300);
    });
  });
}

test('--workers 2 on a port already in use: one clear error, exit 1, no restarts, no fatal stacks', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'meshgate-workers-start-'));
  const blocker = createServer().listen(0, '127.0.0.1');
  await new Promise((r) => blocker.once('listening', r));
  const taken = (blocker.address() as { port: number }).port;
  try {
    const cfg = join(dir, 'c.yaml');
    writeFileSync(cfg, `listeners: [{ name: public, address: "127.0.0.1:${taken}" }]\nadmin: { address: "127.0.0.1:${await freePort()}" }\nroutes: []\n`);
    const r = await run(['start', '--config', cfg, '--workers', '2']);
    assert.equal(r.code, 1, r.out);
    const said = r.out.split('\n').filter((l) => l.startsWith('meshgate: '));
    assert.equal(said.length, 1, r.out);
    // The problem, with its key, follows the one error line.
    assert.match(r.out, /meshgate: invalid config[^\n]*\n {2}listeners\.public: cannot listen on 127\.0\.0\.1:\d+ .*EADDRINUSE/);
    assert.doesNotMatch(r.out, /"level":60|starting a new one|worker exited during start|EPIPE|    at /, r.out);
    // Nothing claims the gateway started.
    assert.doesNotMatch(r.out, /meshgate started|primary ready/, r.out);
  } finally {
    blocker.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('SIGTERM while --workers 2 is starting: no EPIPE or stack traces', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'meshgate-workers-start-'));
  try {
    const cfg = join(dir, 'c.yaml');
    writeFileSync(cfg, `listeners: [{ name: public, address: "127.0.0.1:${await freePort()}" }]\nadmin: { address: "127.0.0.1:${await freePort()}" }\nroutes: []\n`);
    for (const after of [300, 900]) {
      const r = await run(['start', '--config', cfg, '--workers', '2'], after);
      assert.doesNotMatch(r.out, /EPIPE|ERR_IPC_CHANNEL_CLOSED|    at /, `SIGTERM after ${after} ms:\n${r.out}`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
