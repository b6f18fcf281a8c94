import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseCatalog, parseHealth, ConsulPayloadError } from '../../../registries/consul/parse.js';
import { consulServiceName } from '../../../registries/consul/index.js';

function entry(svc: Record<string, unknown>, node: Record<string, unknown> = {}, checks: unknown[] = []): unknown {
  return {
    Node: { ID: 'n-1', Node: 'node1', Address: '10.1.1.1', Datacenter: 'dc1', TaggedAddresses: {}, Meta: {}, ...node },
    Service: { ID: 'web-1', Service: 'web', Tags: [], Address: '', Meta: {}, Port: 8080, Weights: { Passing: 1, Warning: 1 }, ...svc },
    Checks: checks,
  };
}

test('gateway names are <service>.<datacenter>.consul', () => {
  assert.equal(consulServiceName('web', 'dc1'), 'web.dc1.consul');
  assert.equal(consulServiceName('billing-api', 'eu-west'), 'billing-api.eu-west.consul');
});

test('catalog: lists services, leaves out the built-in consul service, filters on all configured tags', () => {
  const data = { consul: [], web: ['http', 'v2'], api: ['http'], batch: [] };
  assert.deepEqual([...parseCatalog(data).keys()].sort(), ['api', 'batch', 'web']);
  assert.deepEqual([...parseCatalog(data, ['http']).keys()].sort(), ['api', 'web']);
  assert.deepEqual([...parseCatalog(data, ['http', 'v2']).keys()], ['web']);
  assert.equal(parseCatalog({}).size, 0);
});

test('catalog: a payload of the wrong shape is an error, not an empty registry', () => {
  assert.throws(() => parseCatalog(['web']), ConsulPayloadError);
  assert.throws(() => parseCatalog(null), ConsulPayloadError);
  assert.throws(() => parseCatalog('<html>'), ConsulPayloadError);
  assert.throws(() => parseCatalog({ web: 'http' }), ConsulPayloadError);
});

test('health: Service.Address, falling back to Node.Address when empty', () => {
  const eps = parseHealth([entry({ Address: '10.9.9.9' }), entry({ ID: 'web-2', Address: '', Port: 8081 })]);
  assert.deepEqual(eps.map((e) => `${e.host}:${e.port}`), ['10.9.9.9:8080', '10.1.1.1:8081']);
});

test('health: Weights.Passing is the weight; no Weights means 1', () => {
  const eps = parseHealth([entry({ Weights: { Passing: 7, Warning: 1 } }), entry({ ID: 'b', Port: 9, Weights: undefined })]);
  assert.deepEqual(eps.map((e) => e.weight), [7, 1]);
});

test('health: Meta and Tags become metadata; key=value tags become keys; Meta wins', () => {
  const [e] = parseHealth([entry({ Tags: ['http', 'version=v2', 'zone=a'], Meta: { zone: 'b', protocol: 'grpc' } })]);
  assert.equal(e!.metadata.tags, 'http,version=v2,zone=a');
  assert.equal(e!.metadata.version, 'v2');
  assert.equal(e!.metadata.zone, 'b');
  assert.equal(e!.metadata.protocol, 'grpc');
  assert.equal(e!.metadata['consul.node'], 'node1');
  assert.equal(e!.metadata['consul.id'], 'web-1');
});

test('health: instances with a non-passing check or without a configured tag are left out', () => {
  const eps = parseHealth(
    [
      entry({ ID: 'ok', Tags: ['http'] }, {}, [{ CheckID: 'serfHealth', Status: 'passing' }]),
      entry({ ID: 'bad', Port: 2, Tags: ['http'] }, {}, [{ CheckID: 'service:bad', Status: 'critical' }]),
      entry({ ID: 'untagged', Port: 3 }),
    ],
    ['http'],
  );
  assert.deepEqual(eps.map((e) => e.metadata['consul.id']), ['ok']);
});

test('health: an empty list is a valid "no instances"; a wrong shape throws', () => {
  assert.deepEqual(parseHealth([]), []);
  assert.throws(() => parseHealth({ error: 'x' }), ConsulPayloadError);
  assert.throws(() => parseHealth([{ Node: {} }]), ConsulPayloadError);
  assert.throws(() => parseHealth('garbage'), ConsulPayloadError);
});
