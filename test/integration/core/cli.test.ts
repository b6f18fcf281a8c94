// The meshgate command: validate, schema, and start with several workers.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { request } from 'undici';
import { stringify } from 'yaml';
import { waitFor } from '../../helpers/gateway.js';
import { freePort, startUpstream, type TestUpstream } from '../../helpers/upstream.js';

const CLI = ['--import', 'tsx', 'src/cli.ts'];
const run = (args: string[], env: Record<string, string> = {}) =>
  spawnSync(process.execPath, [...CLI, ...args], { encoding: 'utf8', env: { ...process.env, ...env }, timeout: 60_000 });

describe('meshgate CLI', () => {
  const dir = mkdtempSync(join(tmpdir(), 'meshgate-cli-'));

  it('validate: exit 0 for the embedded default config', () => {
    const r = run(['validate', 'config/meshgate.yaml']);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /ok/);
  });

  it('validate: non-zero with the bad key named by its path', () => {
    const f = join(dir, 'bad.yaml');
    writeFileSync(
      f,
      stringify({
        routes: [
          { name: 'a', backends: [{ service: 'x' }] },
          { name: 'b', backends: [{ service: 'x' }] },
          { name: 'c', backends: [{ service: 'x', weight: -1 }] },
        ],
      }),
    );
    const r = run(['validate', f]);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /routes\[2\]\.backends\[0\]\.weight: must be >= 0/);
  });

  it('validate: unknown keys are errors, not ignored; unset ${ENV} is named', () => {
    const f = join(dir, 'unknown.yaml');
    writeFileSync(f, 'routes:\n  - name: a\n    backend: [{service: x}]\n');
    const r = run(['validate', f]);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /routes\[0\]: unknown key\(s\): backend/);
    const g = join(dir, 'env.yaml');
    writeFileSync(g, 'registries:\n  - name: n\n    type: static\n    endpoints: ["${MG_TEST_HOST}:80"]\n');
    const unset = run(['validate', g]);
    assert.equal(unset.status, 1);
    assert.match(unset.stderr, /registries\[0\]\.endpoints\[0\]: environment variable MG_TEST_HOST is not set/);
    assert.equal(run(['validate', g], { MG_TEST_HOST: '10.0.0.1' }).status, 0);
  });

  it('command lines: unknown options and commands are errors naming them (exit 2), --version, --help per command', () => {
    const typo = run(['start', '--conifg', 'x.yaml']);
    assert.equal(typo.status, 2);
    assert.match(typo.stderr, /^meshgate start: unknown option --conifg \(options: --config, --workers, --demo-upstreams\)/);
    const cmd = run(['stat']);
    assert.equal(cmd.status, 2);
    assert.match(cmd.stderr, /unknown command "stat"/);
    assert.match(run(['start', '--workers']).stderr, /--workers needs a value/);
    assert.equal(run(['start', '--workers']).status, 2);
    assert.match(run(['validate', 'a.yaml', 'b.yaml']).stderr, /unexpected argument "b\.yaml"/);
    assert.equal(run(['validate']).status, 2);
    const v = run(['--version']);
    assert.equal(v.status, 0);
    assert.equal(v.stdout, `meshgate ${JSON.parse(readFileSync('package.json', 'utf8')).version}\n`);
    const help = run(['validate', '--help']);
    assert.equal(help.status, 0);
    assert.match(help.stdout, /^usage: meshgate validate \[--strict\] FILE\n/);
    assert.match(run(['--help']).stdout, /exit codes: 0 ok; 1 .*; 2 a usage error/);
    // --flag=value is read like --flag value.
    const zero = run(['start', '--workers=0', '--config=config/meshgate.yaml']);
    assert.equal(zero.status, 2);
    assert.match(zero.stderr, /--workers must be a whole number >= 1/);
  });

  it('schema: prints the JSON Schema, identical to the committed config/schema.json', () => {
    const r = run(['schema']);
    assert.equal(r.status, 0);
    const printed = JSON.parse(r.stdout);
    assert.deepEqual(printed, JSON.parse(readFileSync('config/schema.json', 'utf8')), 'run `npm run schema` to regenerate');
    assert.ok(printed.properties.routes && printed.properties.registries);
  });

  describe('start --workers 2', () => {
    let up: TestUpstream;
    let proc: ReturnType<typeof spawn>;
    let port: number;
    let adminPort: number;
    let output = '';

    before(async () => {
      up = await startUpstream('w');
      port = await freePort();
      adminPort = await freePort();
      const f = join(dir, 'workers.yaml');
      writeFileSync(
        f,
        stringify({
          listeners: [{ name: 'public', address: `127.0.0.1:${port}` }],
          admin: { address: `127.0.0.1:${adminPort}` },
          // 600 more services (never contacted: no route names them), so a worker's live view comes in several parts.
          registries: [{ name: 'w', type: 'static', endpoints: [up.address] }, ...Array.from({ length: 600 }, (_, i) => ({ name: `s${i}`, type: 'static', endpoints: [`127.0.0.1:${20000 + i}`] }))],
          routes: [{ name: 'all', backends: [{ service: 'w.static' }] }],
          log: { level: 'info', access: false },
        }),
      );
      proc = spawn(process.execPath, [...CLI, 'start', '--config', f, '--workers', '2'], { stdio: ['ignore', 'pipe', 'pipe'] });
      proc.stdout!.on('data', (d) => (output += d));
      proc.stderr!.on('data', (d) => (output += d));
      await waitFor(() => output.includes('primary ready'), 30_000);
    });

    after(async () => {
      if (proc.exitCode === null) proc.kill('SIGKILL');
      await up.close();
    });

    it('serves on one port from two workers; /metrics sums them and says so', async () => {
      for (let i = 0; i < 40; i++) {
        const r = await request(`http://127.0.0.1:${port}/x`, { reset: true });
        assert.equal(r.statusCode, 200);
        await r.body.dump();
      }
      const metrics = await (await request(`http://127.0.0.1:${adminPort}/metrics`)).body.text();
      assert.match(metrics, /summed over 2 worker\(s\)/);
      assert.match(metrics, /meshgate_requests_total\{route="all",service="w.static",code="200",flag=""\} 40/);
      assert.match(metrics, /meshgate_registry_up\{registry="w"\} 1/);
      const live = (await (await request(`http://127.0.0.1:${adminPort}/api/services?live=1`)).body.json()) as any;
      assert.equal(live.scope, 'cluster');
      assert.equal(live.workers.length, 2);
      assert.notEqual(live.workers[0].pid, live.workers[1].pid);
      // Each worker's 601 services arrive in parts (at most 200 a message) and are put back together whole, in order.
      const primary = (await (await request(`http://127.0.0.1:${adminPort}/api/services`)).body.json()) as Array<{ name: string; endpoints: unknown[] }>;
      assert.equal(primary.length, 601);
      for (const w of live.workers) {
        assert.deepEqual(
          w.services.map((s: { name: string }) => s.name),
          primary.map((s) => s.name),
          `worker ${w.pid} lists every service once, in order`,
        );
        assert.equal(w.services.find((s: { name: string }) => s.name === 's599.static')?.endpoints.length, 1);
      }
      // A page (what the console asks for): the workers describe only its services; the counts come from the primary.
      const paged = await request(`http://127.0.0.1:${adminPort}/api/services?live=1&q=s59&offset=2&limit=5`);
      assert.equal(paged.headers['x-total-count'], '11', 's59 and s590-s599');
      assert.equal(paged.headers['x-service-count'], '601');
      const pagedBody = (await paged.body.json()) as { workers: Array<{ services: Array<{ name: string; endpoints: unknown[] }> }> };
      const want = primary.map((s) => s.name).filter((n) => n.includes('s59')).slice(2, 7);
      assert.equal(want.length, 5);
      assert.equal(pagedBody.workers.length, 2);
      for (const w of pagedBody.workers) {
        assert.deepEqual(w.services.map((s) => s.name), want);
        assert.ok(w.services.every((s) => s.endpoints.length === 1));
      }
    });

    it('stops gracefully on SIGTERM', async () => {
      proc.kill('SIGTERM');
      const code = await new Promise<number | null>((r) => proc.once('exit', (c) => r(c)));
      assert.equal(code, 0);
    });
  });
});
