import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  applyDelta,
  appsFromFull,
  endpointsOf,
  eurekaServiceName,
  parseApplications,
  reconcileHashcode,
  weightOf,
  EurekaPayloadError,
} from '../../../registries/eureka/model.js';
import { parseServerUrl } from '../../../registries/eureka/index.js';

function inst(id: string, fields: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    instanceId: id,
    hostName: `${id}.local`,
    app: 'USER-SERVICE',
    ipAddr: `10.0.0.${id.replace(/\D/g, '') || '1'}`,
    status: 'UP',
    overriddenStatus: 'UNKNOWN',
    port: { $: 8080, '@enabled': 'true' },
    securePort: { $: 443, '@enabled': 'false' },
    metadata: { '@class': 'java.util.Collections$EmptyMap' },
    ...fields,
  };
}

function apps(instances: Record<string, unknown>[], hash = '', name = 'USER-SERVICE'): unknown {
  return { applications: { versions__delta: '1', apps__hashcode: hash, application: [{ name, instance: instances }] } };
}

test('names are <app in lower case>.eureka', () => {
  assert.equal(eurekaServiceName('USER-SERVICE'), 'user-service.eureka');
});

test('server URL: Spring Cloud and Netflix prefixes kept, basic auth taken out of the URL', () => {
  assert.deepEqual(parseServerUrl('http://127.0.0.1:8761/eureka/'), { base: 'http://127.0.0.1:8761/eureka', authorization: undefined });
  assert.equal(parseServerUrl('http://h:8080/eureka/v2').base, 'http://h:8080/eureka/v2');
  assert.equal(parseServerUrl('http://h:8080/eureka/apps/').base, 'http://h:8080/eureka');
  const s = parseServerUrl('http://admin:p%40ss@h:8761/eureka');
  assert.equal(s.base, 'http://h:8761/eureka');
  assert.equal(s.authorization, `Basic ${Buffer.from('admin:p@ss').toString('base64')}`);
});

test('only UP instances route; an override other than UP pulls an UP instance out', () => {
  const a = appsFromFull(
    parseApplications(
      apps([
        inst('i1'),
        inst('i2', { status: 'DOWN' }),
        inst('i3', { status: 'STARTING' }),
        inst('i4', { status: 'OUT_OF_SERVICE', overriddenStatus: 'OUT_OF_SERVICE' }),
        inst('i5', { status: 'UP', overriddenStatus: 'OUT_OF_SERVICE' }),
        inst('i6', { status: 'UP', overriddenStatus: 'UP' }),
      ]),
    ),
  );
  const eps = endpointsOf(a.get('USER-SERVICE')!.values());
  assert.deepEqual(eps.map((e) => e.metadata['eureka.instanceId']), ['i1', 'i6']);
});

test('metadata.weight is a string parsed as a number; bad values mean 1', () => {
  assert.equal(weightOf({ weight: '5' }), 5);
  assert.equal(weightOf({ weight: '0.5' }), 0.5);
  assert.equal(weightOf({ weight: '0' }), 0);
  assert.equal(weightOf({ weight: 'heavy' }), 1);
  assert.equal(weightOf({ weight: '-2' }), 1);
  assert.equal(weightOf({}), 1);
  const a = appsFromFull(parseApplications(apps([inst('i1', { metadata: { weight: '7', zone: 'a' } })])));
  const [e] = endpointsOf(a.get('USER-SERVICE')!.values());
  assert.equal(e!.weight, 7);
  assert.equal(e!.metadata.zone, 'a');
  assert.equal(e!.metadata['@class'], undefined);
});

test('address and port: ipAddr, else hostName; a disabled port falls back to the enabled secure port', () => {
  const a = appsFromFull(
    parseApplications(
      apps([
        inst('i1', { ipAddr: '' }),
        inst('i2', { port: { $: 8080, '@enabled': 'false' }, securePort: { $: 8443, '@enabled': 'true' } }),
        inst('i3', { port: { $: 8080, '@enabled': 'false' } }),
      ]),
    ),
  );
  const eps = endpointsOf(a.get('USER-SERVICE')!.values());
  assert.deepEqual(eps.map((e) => `${e.host}:${e.port}`), ['i1.local:8080', '10.0.0.2:8443']);
  assert.equal(eps[1]!.metadata.secure, 'true');
});

test('the older codec: a single application or instance written as an object, not a list', () => {
  const body = { applications: { versions__delta: '1', apps__hashcode: 'UP_1_', application: { name: 'A', instance: inst('i1', { app: 'A' }) } } };
  const a = appsFromFull(parseApplications(body));
  assert.equal(a.get('A')!.size, 1);
  assert.equal(reconcileHashcode(a), 'UP_1_');
});

test('reconcile hashcode counts every instance by status, statuses sorted', () => {
  const a = appsFromFull(parseApplications(apps([inst('i1'), inst('i2', { status: 'DOWN' }), inst('i3'), inst('i4', { status: 'OUT_OF_SERVICE' })])));
  assert.equal(reconcileHashcode(a), 'DOWN_1_OUT_OF_SERVICE_1_UP_2_');
  assert.equal(reconcileHashcode(new Map()), '');
});

test('deltas: ADDED/MODIFIED upsert, DELETED removes, an emptied application goes, re-applying is harmless', () => {
  const base = appsFromFull(parseApplications(apps([inst('i1'), inst('i2')])));
  const delta = parseApplications({
    applications: {
      versions__delta: '5',
      apps__hashcode: 'DOWN_1_UP_1_',
      application: [
        { name: 'USER-SERVICE', instance: [inst('i1', { status: 'DOWN', actionType: 'MODIFIED' }), inst('i2', { actionType: 'DELETED' }), inst('i3', { actionType: 'ADDED' })] },
        { name: 'GHOST', instance: [inst('g1', { app: 'GHOST', actionType: 'DELETED' })] },
      ],
    },
  });
  const once = applyDelta(base, delta);
  assert.equal(reconcileHashcode(once.apps), 'DOWN_1_UP_1_');
  assert.deepEqual([...once.apps.get('USER-SERVICE')!.keys()].sort(), ['i1', 'i3']);
  assert.deepEqual([...once.changed], ['USER-SERVICE']);
  assert.equal(base.get('USER-SERVICE')!.size, 2, 'the previous copy is untouched');
  const twice = applyDelta(once.apps, delta);
  assert.equal(reconcileHashcode(twice.apps), 'DOWN_1_UP_1_');

  const gone = applyDelta(twice.apps, parseApplications({ applications: { versions__delta: '6', apps__hashcode: '', application: [{ name: 'USER-SERVICE', instance: [inst('i1', { actionType: 'DELETED' }), inst('i3', { actionType: 'DELETED' })] }] } }));
  assert.equal(gone.apps.has('USER-SERVICE'), false);
});

test('answers that are not Eureka applications throw (kept as errors, not read as "no services")', () => {
  assert.throws(() => parseApplications({ timestamp: 1, status: 200 }), EurekaPayloadError);
  assert.throws(() => parseApplications({ applications: { application: 'x' } }), EurekaPayloadError);
  assert.throws(() => parseApplications({ applications: { application: [{ instance: [] }] } }), EurekaPayloadError);
  assert.throws(() => parseApplications(null), EurekaPayloadError);
  const empty = parseApplications({ applications: { versions__delta: '1', apps__hashcode: '', application: [] } });
  assert.equal(empty.instances.length, 0);
});
