import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BadAnswer, nacosServiceName, parseServiceInfo, parseServiceList } from '../../../registries/nacos/parse.js';

const host = (over: Record<string, unknown> = {}) => ({
  instanceId: '10.0.0.1#8080#DEFAULT#DEFAULT_GROUP@@svc',
  ip: '10.0.0.1',
  port: 8080,
  weight: 1.0,
  healthy: true,
  enabled: true,
  ephemeral: true,
  clusterName: 'DEFAULT',
  serviceName: 'DEFAULT_GROUP@@svc',
  metadata: { version: 'v2', n: 3 },
  ...over,
});

const info = (hosts: unknown, name = 'DEFAULT_GROUP@@svc') =>
  JSON.stringify({ name, groupName: 'DEFAULT_GROUP', clusters: 'DEFAULT', cacheMillis: 10000, hosts, lastRefTime: 1700000000123, checksum: 'x', allIPs: false, reachProtectionThreshold: false, valid: true });

test('gateway names follow Higress: group and namespace with _ -> -, service name kept', () => {
  assert.equal(nacosServiceName('user-service', 'DEFAULT_GROUP', 'public'), 'user-service.DEFAULT-GROUP.public.nacos');
  assert.equal(nacosServiceName('order_svc', 'MY_GROUP', 'ns_1'), 'order_svc.MY-GROUP.ns-1.nacos');
  assert.equal(nacosServiceName('providers:com.foo.Svc:1.0.0:', 'DEFAULT_GROUP', 'public'), 'providers:com.foo.Svc:1.0.0:.DEFAULT-GROUP.public.nacos');
});

test('hosts become endpoints: float weight, health, metadata as strings, lastRefTime', () => {
  const p = parseServiceInfo(info([host({ weight: 0.5 }), host({ ip: '10.0.0.2', healthy: false })]));
  assert.equal(p.name, 'DEFAULT_GROUP@@svc');
  assert.equal(p.lastRefTime, 1700000000123);
  assert.deepEqual(p.endpoints.map((e) => [e.host, e.port, e.weight, e.healthy]), [['10.0.0.1', 8080, 0.5, true], ['10.0.0.2', 8080, 1, false]]);
  assert.deepEqual(p.endpoints[0]!.metadata, { version: 'v2', n: '3' });
});

test('enabled=false is kept visible but never routed (weight 0)', () => {
  const p = parseServiceInfo(info([host({ enabled: false, weight: 3 })]));
  assert.equal(p.endpoints[0]!.weight, 0);
});

test('an empty host list is a valid, empty service', () => {
  assert.deepEqual(parseServiceInfo(info([])).endpoints, []);
});

test('Dubbo providers in Nacos get interface, version, group and protocol metadata', () => {
  const p = parseServiceInfo(
    info([host({ metadata: { application: 'demo', methods: 'a,b', side: 'provider', 'dubbo': '2.0.2' } })], 'DEFAULT_GROUP@@providers:com.foo.Svc:1.0.0:g1'),
  );
  assert.deepEqual(
    { ...p.endpoints[0]!.metadata },
    { application: 'demo', methods: 'a,b', side: 'provider', dubbo: '2.0.2', interface: 'com.foo.Svc', version: '1.0.0', group: 'g1', protocol: 'dubbo' },
  );
  const tri = parseServiceInfo(info([host({ metadata: { protocol: 'tri' } })], 'DEFAULT_GROUP@@providers:com.foo.Svc::'));
  assert.equal(tri.endpoints[0]!.metadata.protocol, 'tri');
  assert.equal(tri.endpoints[0]!.metadata.version, '');
});

test('malformed answers are BadAnswer (caller keeps last known), bad hosts are skipped', () => {
  for (const bad of ['{"name": "x", hosts: [', '[]', '"s"', '{"hosts":[]}', JSON.stringify({ name: 'x', hosts: { a: 1 } }), info([{ ip: 5 }, { port: 1 }])]) {
    assert.throws(() => parseServiceInfo(bad), BadAnswer, bad);
  }
  const p = parseServiceInfo(info([host(), { ip: '', port: 1 }, null]));
  assert.equal(p.endpoints.length, 1);
  assert.equal(p.skipped, 2);
});

test('service list: {count, doms}; wrong shapes are BadAnswer', () => {
  assert.deepEqual(parseServiceList('{"count":2,"doms":["a","b"]}'), { count: 2, doms: ['a', 'b'] });
  for (const bad of ['<html>', '{"count":"x","doms":[]}', '{"count":1,"doms":"a"}', '{"count":1,"doms":[1]}', 'null']) {
    assert.throws(() => parseServiceList(bad), BadAnswer, bad);
  }
});
