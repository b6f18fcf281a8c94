// Service names no configured registry can give are warnings with a "did you
// mean"; `validate --strict` makes them errors; and what `validate` checks
// beyond the schema (ports, TLS files, the admin port, an empty file) names
// the key.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { ConfigError, fileProblems, parseConfigText } from '../../../src/config/load.js';
import { serviceNameWarnings } from '../../../src/config/names.js';

const REGISTRIES = `
registries:
  - { name: demo, type: static, endpoints: ["127.0.0.1:9001"] }
  - { name: nacos, type: nacos, servers: ["127.0.0.1:8848"], namespace: prod, groups: [DEFAULT_GROUP, pay_group] }
  - { name: consul, type: consul, servers: ["127.0.0.1:8500"], datacenter: dc1 }
  - { name: eureka, type: eureka, servers: ["http://127.0.0.1:8761/eureka"] }
  - { name: zk, type: zookeeper, servers: ["127.0.0.1:2181"] }
`;

function warnings(routesAndServices: string): string[] {
  return serviceNameWarnings(parseConfigText(REGISTRIES + routesAndServices, 'test.yaml', {}));
}

test('names each configured registry gives pass without a warning', () => {
  assert.deepEqual(
    warnings(`
routes:
  - name: a
    backends:
      - { service: demo.static }
      - { service: user-service.DEFAULT-GROUP.prod.nacos }
      - { service: billing.pay-group.prod.nacos }
      - { service: orders.dc1.consul }
      - { service: orders.eureka }
      - { service: "providers:com.example.OrderService:1.0.0:.zookeeper" }
services:
  orders.dc1.consul: { timeoutMs: 1000 }
`),
    [],
  );
});

test('a typo, a group or namespace the Nacos registry does not watch, another datacenter, an upper-case Eureka app: each named by key path', () => {
  const w = warnings(`
routes:
  - name: a
    backends:
      - { service: demo.statik }
      - { service: user-service.DEFAULT_GROUP.prod.nacos }
      - { service: user-service.DEFAULT-GROUP.public.nacos }
      - { service: orders.dc2.consul }
      - { service: ORDERS.eureka }
    canary:
      weight: 5
      backends: [{ service: orders.nacos }]
services:
  demo.statc: { timeoutMs: 1000 }
`);
  assert.equal(w.length, 7, w.join('\n'));
  assert.match(w[0]!, /^routes\[0\]\.backends\[0\]\.service: no configured registry gives a service named "demo\.statik" .*did you mean "demo\.static"\?$/);
  assert.match(w[1]!, /routes\[0\]\.backends\[1\]\.service: .*did you mean "user-service\.DEFAULT-GROUP\.prod\.nacos"\?/);
  assert.match(w[2]!, /routes\[0\]\.backends\[2\]\.service: .*"user-service\.DEFAULT-GROUP\.public\.nacos"/);
  assert.match(w[3]!, /routes\[0\]\.backends\[3\]\.service: .*did you mean "orders\.dc1\.consul"\?/);
  assert.match(w[4]!, /routes\[0\]\.backends\[4\]\.service: .*"ORDERS\.eureka"/);
  assert.match(w[5]!, /routes\[0\]\.canary\.backends\[0\]\.service: .*"orders\.nacos"/);
  assert.match(w[6]!, /^services\["demo\.statc"\]: .*did you mean "demo\.static"\?/);
});

test('with no registries at all, every backend is a warning that says so', () => {
  const w = serviceNameWarnings(parseConfigText('routes: [{ name: a, backends: [{ service: orders.nacos }] }]\n', 't', {}));
  assert.equal(w.length, 1);
  assert.match(w[0]!, /no registries are configured/);
});

function problems(text: string): string[] {
  try {
    parseConfigText(text, 'test.yaml', {});
  } catch (e) {
    if (e instanceof ConfigError) return e.problems;
    throw e;
  }
  return [];
}

test('validate refuses what cannot start, naming the key: a bad port, the admin port taken by a listener, a TLS file missing, an empty file', () => {
  assert.deepEqual(problems('listeners: [{ name: p, address: "127.0.0.1:99999" }]\n'), ['listeners[0].address: bad port in 127.0.0.1:99999']);
  assert.deepEqual(problems('listeners: [{ name: p, address: "0.0.0.0:8080" }]\nadmin: { address: "127.0.0.1:8080" }\n'), [
    'admin.address: 127.0.0.1:8080 takes the port of listeners[0].address (0.0.0.0:8080)',
  ]);
  assert.deepEqual(problems('listeners: [{ name: p, address: "127.0.0.1:8080" }]\nadmin: { address: "127.0.0.1:8081" }\n'), []);
  const tls = fileProblems(parseConfigText('listeners: [{ name: s, address: "127.0.0.1:8443", protocol: https, tls: { certificates: [{ hosts: ["*"], cert: /nonexistent/a.crt, key: /nonexistent/a.key }] } }]\n', 't', {}));
  assert.deepEqual(tls, ['listeners[0].tls.certificates[0].cert: cannot read /nonexistent/a.crt: ENOENT', 'listeners[0].tls.certificates[0].key: cannot read /nonexistent/a.key: ENOENT']);
  assert.match(problems('')[0]!, /the file is empty/);
  assert.match(problems('# only a comment\n')[0]!, /the file is empty/);
  assert.match(problems('- a\n- b\n')[0]!, /top level must be a mapping/);
});

test('meshgate validate prints warnings and passes; --strict fails on them', () => {
  const dir = mkdtempSync(join(tmpdir(), 'meshgate-validate-'));
  try {
    const file = join(dir, 'c.yaml');
    writeFileSync(file, `${REGISTRIES}routes: [{ name: a, backends: [{ service: demo.statik }] }]\n`);
    const cli = (args: string[]) => spawnSync(process.execPath, ['--import', 'tsx', 'src/cli.ts', 'validate', ...args], { encoding: 'utf8' });
    const loose = cli([file]);
    assert.equal(loose.status, 0, loose.stderr);
    assert.match(loose.stderr, /warning: routes\[0\]\.backends\[0\]\.service: .*did you mean "demo\.static"/);
    assert.match(loose.stdout, /ok \(1 routes, 5 registries, 1 warning\)/);
    const strict = cli(['--strict', file]);
    assert.equal(strict.status, 1);
    assert.match(strict.stderr, /invalid\n {2}routes\[0\]\.backends\[0\]\.service: /);
    writeFileSync(file, 'listeners: [{ name: s, address: "127.0.0.1:8443", protocol: https, tls: { certificates: [{ hosts: ["*"], cert: /nonexistent/a.crt, key: /nonexistent/a.key }] } }]\nroutes: []\n');
    const tls = cli([file]);
    assert.equal(tls.status, 1);
    assert.match(tls.stderr, /listeners\[0\]\.tls\.certificates\[0\]\.cert: cannot read \/nonexistent\/a\.crt: ENOENT/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
