// The `registries` part of the config schema is composed from the registry
// plug-ins (registries/index.ts): every kind is in it with its own keys, and a
// bad key of any kind is reported by its path.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { z } from 'zod';
import { REGISTRY_PLUGINS } from '../../../registries/index.js';
import { ConfigError, validateConfig } from '../../../src/config/load.js';
import { ConfigSchema, RegistrySchema } from '../../../src/config/schema.js';

const problems = (doc: unknown): string[] => {
  try {
    validateConfig(doc, 'test', {});
  } catch (e) {
    assert.ok(e instanceof ConfigError, String(e));
    return e.problems;
  }
  assert.fail('expected a ConfigError');
};

interface JsonObject {
  type?: string;
  properties?: Record<string, { const?: unknown }>;
  required?: string[];
  oneOf?: JsonObject[];
  items?: JsonObject;
}

describe('registries schema, composed from the plug-ins', () => {
  it('every kind in the list is a branch of the registries union, in list order', () => {
    assert.deepEqual(
      RegistrySchema.options.map((o) => o.shape.type.value),
      REGISTRY_PLUGINS.map((p) => p.type),
    );
  });

  it('the JSON schema (meshgate schema) describes every kind with all of its keys', () => {
    const json = z.toJSONSchema(ConfigSchema, { io: 'input', unrepresentable: 'any' }) as JsonObject;
    const branches = json.properties!.registries as JsonObject;
    const oneOf = branches.items!.oneOf!;
    assert.equal(oneOf.length, REGISTRY_PLUGINS.length);
    for (const p of REGISTRY_PLUGINS) {
      const branch = oneOf.find((b) => b.properties?.type?.const === p.type);
      assert.ok(branch, `no branch for ${p.type}`);
      assert.deepEqual(Object.keys(branch.properties!), Object.keys(p.schema.shape), p.type);
      assert.deepEqual(Object.keys(branch.properties!).slice(0, 2), ['name', 'type'], p.type);
      assert.ok(branch.required!.includes('name') && branch.required!.includes('type'), p.type);
    }
  });

  it('the key names users write are kept', () => {
    const keys = Object.fromEntries(REGISTRY_PLUGINS.map((p) => [p.type, Object.keys(p.schema.shape)]));
    assert.deepEqual(keys, {
      static: ['name', 'type', 'endpoints', 'protocol'],
      dns: ['name', 'type', 'domain', 'srv', 'intervalMs', 'resolvers'],
      zookeeper: ['name', 'type', 'servers', 'paths', 'sessionTimeoutMs', 'spinDelayMs', 'auth'],
      nacos: ['name', 'type', 'servers', 'namespace', 'groups', 'clusters', 'username', 'password', 'accessToken', 'serviceListIntervalMs', 'pollIntervalMs', 'udpPort', 'protocol', 'grpcPortOffset', 'grpcHealthIntervalMs'],
      consul: ['name', 'type', 'servers', 'datacenter', 'token', 'tags', 'waitSec', 'secure'],
      eureka: ['name', 'type', 'servers', 'fetchIntervalMs'],
    });
  });

  it('a bad key of a registry kind is named by its path', () => {
    const zk = { name: 'zk', type: 'zookeeper', servers: ['127.0.0.1:2181'] };
    assert.deepEqual(problems({ registries: [{ name: 'a', type: 'static', endpoints: [] }, { ...zk, servers: ['127.0.0.1:2181', 'nope'] }] }), [
      'registries[1].servers[1]: must be host:port',
    ]);
    assert.deepEqual(problems({ registries: [{ ...zk, sessionTimeoutMs: 0 }] }), ['registries[0].sessionTimeoutMs: must be >= 1']);
    assert.deepEqual(problems({ registries: [{ ...zk, paths: ['dubbo'] }] }), ['registries[0].paths[0]: Invalid string: must start with "/"']);
    assert.deepEqual(problems({ registries: [{ name: 'n', type: 'nacos', servers: ['127.0.0.1:8848'], udpPort: -1 }] }), [
      'registries[0].udpPort: must be >= 0',
    ]);
    assert.deepEqual(problems({ registries: [{ name: 'c', type: 'consul', servers: ['127.0.0.1:8500'], waitSec: 'x' }] }), [
      'registries[0].waitSec: expected number, received string',
    ]);
    assert.deepEqual(problems({ registries: [{ name: '-x', type: 'eureka', servers: ['http://127.0.0.1:8761/eureka'] }] }), [
      'registries[0].name: must be letters, digits, _ . -',
    ]);
    assert.match(problems({ registries: [{ name: 'x', type: 'etcd' }] })[0]!, /^registries\[0\]\.type: .*'static' \| 'dns' \| 'zookeeper' \| 'nacos' \| 'consul' \| 'eureka'/);
  });

  it('every kind refuses unknown keys and names the registry', () => {
    for (const p of REGISTRY_PLUGINS) {
      const got = problems({ registries: [{ name: 'r', type: p.type, colour: 'red' }] });
      assert.ok(got.includes('registries[0]: unknown key(s): colour'), `${p.type}: ${got.join('; ')}`);
      assert.ok(got.every((x) => x.startsWith('registries[0]')), `${p.type}: ${got.join('; ')}`);
    }
  });

  it("a kind's own checks (beyond the schema) are named by their path too", () => {
    assert.deepEqual(problems({ registries: [{ name: 'd', type: 'dns' }] }), ['registries[0]: dns registry needs domain or srv']);
    assert.deepEqual(problems({ registries: [{ name: 'd', type: 'dns', srv: '_http._tcp.x' }, { name: 's', type: 'static', endpoints: ['1.2.3.4:80', '1.2.3.4:80 zone'] }] }), [
      'registries[1].endpoints[1]: "zone" in "1.2.3.4:80 zone" is not key=value',
    ]);
  });
});
