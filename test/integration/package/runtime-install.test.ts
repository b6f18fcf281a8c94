// A runtime-only install, as a user without the dev tools gets it: the
// tarball `npm pack` makes (prepack builds dist/) installed with
// `npm install --omit=dev` into an empty project; `meshgate validate` and
// `meshgate start` run from it and the demo route answers. Also: the tarball
// holds the licence and no source maps pointing at sources it does not ship.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { test } from 'node:test';
import { freePort } from '../../helpers/upstream.js';

const ROOT = resolve(import.meta.dirname, '../../..');

function run(cmd: string, args: string[], cwd: string): string {
  const r = spawnSync(cmd, args, { cwd, encoding: 'utf8', timeout: 300_000 });
  assert.equal(r.status, 0, `${cmd} ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

test('npm pack, then npm install --omit=dev: meshgate validates and starts from the installed package', { timeout: 600_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'meshgate-pack-'));
  try {
    run('npm', ['pack', '--silent', '--pack-destination', dir], ROOT);
    const tgz = readdirSync(dir).find((f) => f.endsWith('.tgz'))!;
    const listing = run('tar', ['tzf', join(dir, tgz)], dir).split('\n');
    assert.ok(listing.includes('package/LICENSE'), 'LICENSE in the tarball');
    assert.ok(listing.includes('package/dist/src/cli.js'), 'built output in the tarball');
    assert.ok(listing.includes('package/dist/console/index.html'), 'the web console in the tarball');
    assert.deepEqual(listing.filter((f) => f.endsWith('.map')), [], 'no source maps without their sources');
    assert.deepEqual(listing.filter((f) => f.startsWith('package/test/') || f.startsWith('package/src/')), []);

    const app = join(dir, 'app');
    run('mkdir', ['-p', app], dir);
    writeFileSync(join(app, 'package.json'), '{ "name": "app", "version": "1.0.0", "private": true }\n');
    run('npm', ['install', '--omit=dev', '--prefer-offline', '--no-audit', '--no-fund', join(dir, tgz)], app);
    const installed = readdirSync(join(app, 'node_modules'));
    for (const devOnly of ['typescript', 'tsx', '@grpc', 'ws', 'eureka-js-client', 'openai']) assert.ok(!installed.includes(devOnly), `${devOnly} is not installed at runtime`);
    const bin = join(app, 'node_modules', '.bin', 'meshgate');
    const defaultConfig = join(app, 'node_modules', 'meshgate', 'config', 'meshgate.yaml');
    assert.match(run(bin, ['validate', defaultConfig], app), /ok \(1 routes/);
    assert.match(run(bin, ['--version'], app), /^meshgate \d+\.\d+\.\d+\n$/);

    // The default config with free ports instead of 8080/8001.
    const [port, admin] = [await freePort(), await freePort()];
    const cfg = join(app, 'meshgate.yaml');
    const text = spawnSync('sed', ['-e', `s/127.0.0.1:8080/127.0.0.1:${port}/`, '-e', `s/127.0.0.1:8001/127.0.0.1:${admin}/`, defaultConfig], { encoding: 'utf8' }).stdout;
    writeFileSync(cfg, text);
    const gw = spawn(bin, ['start', '--config', cfg, '--workers', '1', '--demo-upstreams'], { cwd: app, stdio: ['ignore', 'pipe', 'pipe'] });
    let log = '';
    gw.stdout.on('data', (d) => (log += d));
    gw.stderr.on('data', (d) => (log += d));
    try {
      let status = 0;
      for (let i = 0; i < 100 && status !== 200; i++) {
        await new Promise((r) => setTimeout(r, 100));
        status = await fetch(`http://127.0.0.1:${port}/hello`).then((r) => r.status, () => 0);
      }
      assert.equal(status, 200, log);
      // The console the tarball ships, served by the installed gateway, and the script its page loads.
      const page = await fetch(`http://127.0.0.1:${admin}/`).then((r) => r.text());
      const script = /src="(assets\/[^"]+\.js)"/.exec(page)?.[1];
      assert.ok(script, page);
      const js = await fetch(`http://127.0.0.1:${admin}/${script}`);
      assert.equal(js.status, 200);
      assert.match(js.headers.get('content-type') ?? '', /javascript/);
    } finally {
      gw.kill('SIGTERM');
      await new Promise((r) => gw.once('exit', r));
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
