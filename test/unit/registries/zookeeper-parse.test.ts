import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  decodeJavaUrlComponent,
  GarbageNode,
  parseCuratorInstance,
  parseDubboProviderNode,
} from '../../../registries/zookeeper/parse.js';

// Java's URLEncoder: space -> '+', everything else percent-encoded.
function javaEncode(s: string): string {
  return encodeURIComponent(s).replace(/%20/g, '+');
}

test('a Dubbo provider URL node gives the Higress service name and every parameter as metadata', () => {
  const url =
    'dubbo://10.0.0.5:20880/com.foo.DemoService?anyhost=true&application=demo&dubbo=2.0.2&interface=com.foo.DemoService' +
    '&methods=a,b&version=1.0.0&group=g1&side=provider&weight=50&timestamp=1700000000000&desc=hello world';
  const p = parseDubboProviderNode(javaEncode(url));
  assert.equal(p.service, 'providers:com.foo.DemoService:1.0.0:g1.zookeeper');
  assert.ok(p.endpoint);
  assert.equal(p.endpoint.host, '10.0.0.5');
  assert.equal(p.endpoint.port, 20880);
  assert.equal(p.endpoint.weight, 50);
  assert.equal(p.endpoint.metadata.protocol, 'dubbo');
  assert.equal(p.endpoint.metadata.application, 'demo');
  assert.equal(p.endpoint.metadata.methods, 'a,b');
  assert.equal(p.endpoint.metadata.anyhost, 'true');
  assert.equal(p.endpoint.metadata.timestamp, '1700000000000');
  // '+' from Java's URLEncoder is a space, not a literal plus
  assert.equal(p.endpoint.metadata.desc, 'hello world');
});

test('empty version and group keep empty segments; default weight is Dubbo\'s 100', () => {
  const p = parseDubboProviderNode(javaEncode('tri://10.0.0.6:50051/com.foo.Svc?interface=com.foo.Svc&side=provider'));
  assert.equal(p.service, 'providers:com.foo.Svc::.zookeeper');
  assert.equal(p.endpoint?.weight, 100);
  assert.equal(p.endpoint?.metadata.protocol, 'tri');
});

test('a literal plus survives (Java encodes it as %2B)', () => {
  const p = parseDubboProviderNode(javaEncode('dubbo://1.2.3.4:1/x.Y?interface=x.Y&tag=a+b'));
  assert.equal(p.endpoint?.metadata.tag, 'a+b');
  assert.equal(decodeJavaUrlComponent('a+b%2Bc'), 'a b+c');
});

test('interface comes from the path when the parameter is missing; IPv6 hosts are unbracketed', () => {
  const p = parseDubboProviderNode(javaEncode('rest://[fe80::1]:8080/com.foo.Rest?version=2'));
  assert.equal(p.service, 'providers:com.foo.Rest:2:.zookeeper');
  assert.equal(p.endpoint?.host, 'fe80::1');
  assert.equal(p.endpoint?.port, 8080);
});

test('disabled providers are recognised but not routable', () => {
  assert.equal(parseDubboProviderNode(javaEncode('dubbo://1.2.3.4:20880/a.B?interface=a.B&enabled=false')).endpoint, null);
  const d = parseDubboProviderNode(javaEncode('dubbo://1.2.3.4:20880/a.B?interface=a.B&disabled=true&version=1'));
  assert.equal(d.service, 'providers:a.B:1:.zookeeper');
  assert.equal(d.endpoint, null);
});

test('garbage provider nodes throw GarbageNode instead of producing endpoints', () => {
  for (const bad of ['%E0%A4%A', 'not-a-url', javaEncode('dubbo://1.2.3.4/a.B?interface=a.B'), javaEncode('dubbo://1.2.3.4:99999/a.B'), javaEncode('consumer://1.2.3.4:1/a.B?side=consumer')]) {
    assert.throws(() => parseDubboProviderNode(bad), GarbageNode, bad);
  }
});

test('Spring Cloud Curator JSON: UP and empty status are routable, other statuses and enabled=false are not', () => {
  const doc = (status: string | undefined, extra: Record<string, unknown> = {}) =>
    Buffer.from(
      JSON.stringify({
        name: 'orders',
        id: 'a1b2',
        address: '10.1.1.1',
        port: 8080,
        sslPort: null,
        payload: { '@class': 'org.springframework.cloud.zookeeper.discovery.ZookeeperInstance', id: 'orders', name: 'orders', metadata: status === undefined ? {} : { instance_status: status, zone: 'a' } },
        registrationTimeUTC: 1,
        serviceType: 'DYNAMIC',
        ...extra,
      }),
    );
  const up = parseCuratorInstance(doc('UP'), 'n');
  assert.deepEqual(
    { host: up?.host, port: up?.port, weight: up?.weight, zone: up?.metadata.zone, id: up?.metadata.instanceId },
    { host: '10.1.1.1', port: 8080, weight: 1, zone: 'a', id: 'a1b2' },
  );
  assert.ok(parseCuratorInstance(doc(''), 'n'));
  assert.ok(parseCuratorInstance(doc(undefined), 'n'));
  assert.equal(parseCuratorInstance(doc('OUT_OF_SERVICE'), 'n'), null);
  assert.equal(parseCuratorInstance(doc('DOWN'), 'n'), null);
  assert.equal(parseCuratorInstance(doc('UP', { enabled: false }), 'n'), null);
});

test('Dubbo 3 application-level instance: protocol from dubbo.endpoints, Dubbo default weight', () => {
  const data = Buffer.from(
    JSON.stringify({
      name: 'demo-provider',
      id: '10.0.0.7:20880',
      address: '10.0.0.7',
      port: 20880,
      payload: {
        '@class': 'org.apache.dubbo.registry.zookeeper.ZookeeperInstance',
        id: '10.0.0.7:20880',
        name: 'demo-provider',
        metadata: {
          'dubbo.endpoints': JSON.stringify([{ port: 50051, protocol: 'tri' }, { port: 20880, protocol: 'dubbo' }]),
          'dubbo.metadata.revision': 'abc',
          'dubbo.metadata.storage-type': 'local',
        },
      },
      serviceType: 'DYNAMIC',
    }),
  );
  const e = parseCuratorInstance(data, 'n');
  assert.equal(e?.metadata.protocol, 'dubbo');
  assert.equal(e?.weight, 100);
  assert.equal(e?.metadata['dubbo.metadata.revision'], 'abc');
});

test('garbage Curator data throws GarbageNode', () => {
  for (const bad of ['', '{', '[1,2]', '"str"', '{"address":"1.2.3.4"}', '{"port":80}', '{"address":"h","port":"x"}']) {
    assert.throws(() => parseCuratorInstance(Buffer.from(bad), 'n'), GarbageNode, bad);
  }
  assert.throws(() => parseCuratorInstance(undefined, 'n'), GarbageNode);
});
