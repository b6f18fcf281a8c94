// A reload fails at each step after validation: compile, binding the second of
// two new listeners, preparing a kept https listener's new certificates. Each
// time nothing running changes: the listeners bound on the way are released,
// no service of the refused config shows up, the https listener presents its
// old certificate on the same socket, and every report names what serves.
import assert from 'node:assert/strict';
import tls from 'node:tls';
import { after, before, describe, it } from 'node:test';
import { request } from 'undici';
import { makeCerts, type TestCerts } from '../../fixtures/tls/certs.js';
import { startUpstream, type TestUpstream } from '../../helpers/upstream.js';
import { accepts, exchange, freePort, occupy, startTarget, type Target } from './harness.js';

describe('a reload that fails after validation changes nothing', () => {
  let upstream: TestUpstream;
  let certs: TestCerts;
  let target: Target;
  let port: number;
  let securePort: number;
  let adminPort: number;

  const config = (o: { extraListeners?: string; secureCerts?: string; services?: string; routes?: string } = {}): string => `
listeners:
${o.extraListeners ?? ''}
  - { name: public, address: "127.0.0.1:${port}" }
  - name: secure
    address: "127.0.0.1:${securePort}"
    protocol: https
    tls:
      certificates:
        - { hosts: [a.test], cert: "${certs.leaves.a!.cert}", key: "${certs.leaves.a!.key}" }
${o.secureCerts ?? ''}
admin: { address: "127.0.0.1:${adminPort}" }
log: { level: info, access: false }
registries: [{ name: up, type: static, endpoints: ["${upstream.address}"] }]
services: {${o.services ?? ''}}
routes:
${o.routes ?? ''}
  - { name: all, match: { path: { prefix: / } }, backends: [{ service: up.static }] }
`;

  /** The DNS names of the certificate the https listener presents. */
  const presented = (): Promise<string> =>
    new Promise((resolve, reject) => {
      const s = tls.connect({ port: securePort, host: '127.0.0.1', servername: 'a.test', rejectUnauthorized: false }, () => {
        resolve(s.getPeerCertificate().subjectaltname ?? '');
        s.destroy();
      });
      s.on('error', reject);
    });

  /** What every refused reload leaves: the old version serving and saying so. */
  async function assertUnchanged(version: number, rejected: number): Promise<void> {
    const cfg = (await target.get('/api/config')).body;
    assert.equal(cfg.version, version);
    assert.equal(cfg.lastReload.ok, false);
    assert.deepEqual(
      cfg.config.listeners.map((l: { name: string }) => l.name),
      ['public', 'secure'],
    );
    assert.equal(await target.reloads('rejected'), rejected + 1);
    assert.equal((await target.get('/readyz')).status, 200);
    const r = await request(`http://127.0.0.1:${port}/still`);
    assert.equal(r.statusCode, 200);
    await r.body.dump();
  }

  before(async () => {
    certs = makeCerts({ a: ['a.test'], b: ['b.test'] });
    upstream = await startUpstream('u');
    [port, securePort, adminPort] = [await freePort(), await freePort(), await freePort()];
    target = await startTarget(1, config());
  });
  after(async () => {
    await target?.stop();
    await upstream?.close();
    certs?.cleanup();
  });

  it('compile: a new route to a new service with a bad policy is refused, and the service does not appear', async () => {
    const version = (await target.get('/api/config')).body.version;
    const rejected = await target.reloads('rejected');
    const r = await target.reload(
      config({
        services: `"ghost.static": { outlierDetection: { baseEjectionMs: 1000, maxEjectionMs: 10 } }`,
        routes: `  - { name: ghost, match: { path: { prefix: /ghost } }, backends: [{ service: ghost.static }] }`,
      }),
    );
    assert.equal(r.status, 400);
    assert.match(r.body.error, /services\.ghost\.static\.outlierDetection\.maxEjectionMs/);
    const services = (await target.get('/api/services')).body as Array<{ name: string }>;
    assert.deepEqual(
      services.map((s) => s.name),
      ['up.static'],
    );
    const routes = (await target.get('/api/routes')).body.routes as Array<{ name: string }>;
    assert.deepEqual(
      routes.map((x) => x.name),
      ['all'],
    );
    await assertUnchanged(version, rejected);
  });

  it('bind: the second new listener finds its port busy; the first, already bound, is released', async () => {
    const [free, busy] = [await freePort(), await freePort()];
    const blocker = await occupy(busy);
    try {
      const version = (await target.get('/api/config')).body.version;
      const rejected = await target.reloads('rejected');
      const r = await target.reload(
        config({
          extraListeners: `  - { name: one, address: "127.0.0.1:${free}" }\n  - { name: two, address: "127.0.0.1:${busy}" }`,
        }),
      );
      assert.equal(r.status, 400);
      assert.match(r.body.error, new RegExp(`listeners\\[1\\]: cannot listen on 127\\.0\\.0\\.1:${busy} \\(listener "two"\\): address in use`));
      assert.equal(await accepts(free), false, 'the listener bound before the failure was closed');
      // And the port really is free again: something else can take it.
      await (await occupy(free)).close();
      await assertUnchanged(version, rejected);
    } finally {
      await blocker.close();
    }
  });

  it('prepare: a kept https listener whose new certificate file is missing keeps its old certificate; a listener bound before is released', async () => {
    assert.equal(await presented(), 'DNS:a.test');
    const free = await freePort();
    const version = (await target.get('/api/config')).body.version;
    const rejected = await target.reloads('rejected');
    const r = await target.reload(
      config({
        extraListeners: `  - { name: one, address: "127.0.0.1:${free}" }`,
        secureCerts: `        - { hosts: [b.test], cert: "${certs.dir}/missing.crt", key: "${certs.leaves.b!.key}" }`,
      }),
    );
    assert.equal(r.status, 400);
    assert.match(r.body.error, /listeners\[2\]\.tls\.certificates\[1\]: ENOENT/);
    assert.equal(await accepts(free), false);
    assert.equal(await presented(), 'DNS:a.test');
    await assertUnchanged(version, rejected);
  });

  it('the same https change with the file present applies on the same socket: an open TLS connection stays, new ones get the new certificate', async () => {
    const open = await new Promise<tls.TLSSocket>((resolve, reject) => {
      const s = tls.connect({ port: securePort, host: '127.0.0.1', servername: 'a.test', rejectUnauthorized: false, ALPNProtocols: ['http/1.1'] }, () => resolve(s));
      s.on('error', reject);
    });
    assert.equal((await exchange(open, '/before')).status, 200);
    const r = await target.reload(config({ secureCerts: `        - { hosts: [b.test], cert: "${certs.leaves.b!.cert}", key: "${certs.leaves.b!.key}" }` }));
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.equal((await exchange(open, '/after')).status, 200, 'the connection opened before the reload still serves');
    open.destroy();
    const b = await new Promise<string>((resolve, reject) => {
      const s = tls.connect({ port: securePort, host: '127.0.0.1', servername: 'b.test', rejectUnauthorized: false }, () => {
        resolve(s.getPeerCertificate().subjectaltname ?? '');
        s.destroy();
      });
      s.on('error', reject);
    });
    assert.equal(b, 'DNS:b.test');
    assert.equal(await presented(), 'DNS:a.test');
  });
});
