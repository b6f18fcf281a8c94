// Unit checks of the auth building blocks: stored passwords, the HMAC
// signature format (against the worked example in APISIX's hmac-auth docs),
// credential compilation, and the gate's order of decisions.
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { describe, it } from 'node:test';
import { AuthSetup } from '../../../src/filters/auth/gate.js';
import { compileConsumers } from '../../../src/filters/auth/consumers.js';
import { createHmacAuth, HmacAuthFilterSchema, parseSignature, sign, signingString } from '../../../src/filters/auth/hmac-auth.js';
import { claimHeaderValue } from '../../../src/filters/auth/jwt-auth.js';
import { createKeyAuth, KeyAuthFilterSchema, withoutQueryParam } from '../../../src/filters/auth/key-auth.js';
import { hashPassword, parseStoredPassword, PasswordVerifier, VerifierBusy } from '../../../src/filters/auth/password.js';
import type { RouteConfig } from '../../../src/config/schema.js';
import type { Rejection } from '../../../src/filters/types.js';
import { exchange } from '../routing/fixtures.js';

describe('stored passwords (scrypt)', () => {
  it('hash then verify: the right password matches, a near miss does not; the text form is scrypt$N$r$p$salt$hash', async () => {
    const h = await hashPassword('correct horse', { N: 1024 });
    assert.match(h, /^scrypt\$1024\$8\$1\$[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]+$/);
    const v = new PasswordVerifier();
    const stored = parseStoredPassword(h);
    assert.equal(await v.verify(stored, 'correct horse'), true);
    assert.equal(await v.verify(stored, 'correct horsE'), false);
    assert.equal(await v.verify(stored, ''), false);
  });

  it('two hashes of one password differ (fresh salt)', async () => {
    assert.notEqual(await hashPassword('p', { N: 1024 }), await hashPassword('p', { N: 1024 }));
  });

  it('a success is remembered for a minute, a failure never; expiry forces a new scrypt run', async () => {
    let now = 1_000_000;
    const v = new PasswordVerifier(() => now);
    const stored = parseStoredPassword(await hashPassword('pw', { N: 1024 }));
    await v.verify(stored, 'wrong');
    assert.equal(v.size, 0);
    await v.verify(stored, 'pw');
    assert.equal(v.size, 1);
    now += 61_000;
    assert.equal(await v.verify(stored, 'pw'), true);
    // A cached success is bound to the stored hash: a new hash of another password does not hit it.
    const other = parseStoredPassword(await hashPassword('other', { N: 1024 }));
    assert.equal(await v.verify(other, 'pw'), false);
  });

  it('a burst of the same credentials shares one check; a flood of distinct ones is refused as overload, not queued without bound', async () => {
    const v = new PasswordVerifier();
    const stored = parseStoredPassword(await hashPassword('pw', { N: 1024 }));
    const a = v.verify(stored, 'pw');
    assert.equal(v.verify(stored, 'pw'), a, 'the second request waits for the first check');
    assert.equal(await a, true);
    const flood = await Promise.allSettled(Array.from({ length: 400 }, (_, i) => v.verify(stored, `guess-${i}`)));
    const busy = flood.filter((r) => r.status === 'rejected' && r.reason instanceof VerifierBusy).length;
    assert.ok(busy > 0, 'some checks were refused');
    assert.ok(flood.every((r) => (r.status === 'fulfilled' ? r.value === false : r.reason instanceof VerifierBusy)));
    assert.equal(await v.verify(stored, 'not-cached'), false, 'after the flood a new check runs again (not refused as busy)');
  });

  it('refuses a password in clear and malformed parameters, without echoing the value', () => {
    for (const bad of ['hunter2', 'scrypt$1000$8$1$c2FsdA==$aGFzaGhhc2hoYXNoaGFzaA==', 'scrypt$1024$8$1$!!$aGFzaA==', 'scrypt$1024$99$1$c2FsdA==$aGFzaGhhc2hoYXNoaGFzaA==']) {
      assert.throws(
        () => parseStoredPassword(bad),
        (e: Error) => !e.message.includes(bad),
      );
    }
  });
});

describe('hmac_auth signatures', () => {
  // The worked example of APISIX 3.11's hmac-auth documentation (its keys and
  // Date; the signature is HMAC-SHA256 over the signing string its script builds:
  // the signatures printed beside that script do not come from these inputs).
  const example = { keyId: 'john-key', secret: 'john-secret-key', date: 'Fri, 06 Sep 2024 06:41:29 GMT' };
  const docString = `john-key\nGET /get\ndate: ${example.date}\n`;
  const signature = createHmac('sha256', example.secret).update(docString).digest('base64');

  it('the signing string of the documented example, line by line', () => {
    const text = signingString({ keyId: example.keyId, headers: ['@request-target', 'date'] }, 'GET', '/get', (h) => (h === 'date' ? example.date : undefined));
    assert.equal(text, docString);
    assert.equal(sign('hmac-sha256', example.secret, text!), signature);
    assert.equal(signingString({ keyId: 'k', headers: ['date', 'x-absent'] }, 'GET', '/', (h) => (h === 'date' ? 'd' : undefined)), undefined, 'a listed header that is absent');
  });

  it('the filter accepts a request signed that way at its Date and refuses it ten minutes later', () => {
    const secret = 'john-secret-key-longer'; // meshgate asks for 16 characters or more
    const consumers = compileConsumers([{ name: 'john', credentials: [{ type: 'hmac_auth', keyId: example.keyId, secret }] }]);
    const cfg = HmacAuthFilterSchema.parse({ type: 'hmac_auth' });
    const sig = createHmac('sha256', secret).update(docString).digest('base64');
    const auth = `Signature keyId="${example.keyId}",algorithm="hmac-sha256",headers="@request-target date",signature="${sig}"`;
    const at = Date.parse(example.date);
    const ok = exchange({ url: '/get', headers: { date: example.date, authorization: auth } });
    assert.equal(createHmacAuth(cfg, consumers, () => at + 1000).onRequest!(ok), undefined);
    assert.equal(ok.consumer, 'john');
    const late = exchange({ url: '/get', headers: { date: example.date, authorization: auth } });
    const r = createHmacAuth(cfg, consumers, () => at + 600_000).onRequest!(late) as Rejection;
    assert.equal(r.status, 401);
    assert.equal(late.consumer, undefined);
  });

  it('parses Signature parameters; refuses repeated or missing ones', () => {
    assert.deepEqual(parseSignature('keyId="k",algorithm="HMAC-SHA256",headers="@request-target Date",signature="c2ln"'), {
      keyId: 'k',
      algorithm: 'hmac-sha256',
      headers: ['@request-target', 'date'],
      signature: 'c2ln',
    });
    assert.equal(parseSignature('keyId="k",keyId="j",algorithm="hmac-sha256",signature="x"'), undefined);
    assert.equal(parseSignature('keyId="k",algorithm="hmac-sha256"'), undefined);
    assert.equal(parseSignature('keyId=k,algorithm="hmac-sha256",signature="x"'), undefined);
  });

  it('an algorithm outside the allow-list is refused before any key is looked at', () => {
    const consumers = compileConsumers([{ name: 'john', credentials: [{ type: 'hmac_auth', keyId: 'john-key', secret: 'john-secret-key-longer' }] }]);
    const cfg = HmacAuthFilterSchema.parse({ type: 'hmac_auth', allowedAlgorithms: ['hmac-sha512'] });
    const ex = exchange({ url: '/get', headers: { date: new Date().toUTCString(), authorization: `Signature keyId="john-key",algorithm="hmac-sha256",headers="@request-target date",signature="x"` } });
    const r = createHmacAuth(cfg, consumers).onRequest!(ex) as Rejection;
    assert.equal(r.status, 401);
    assert.match(r.message!, /hmac-sha256 not allowed/);
  });
});

describe('key_auth pieces', () => {
  it('hideCredentials takes exactly the named query parameter out, encoded or not', () => {
    assert.equal(withoutQueryParam('/p?a=1&apikey=k&b=2', 'apikey'), '/p?a=1&b=2');
    assert.equal(withoutQueryParam('/p?api%6Bey=k', 'apikey'), '/p');
    assert.equal(withoutQueryParam('/p?apikeys=k', 'apikey'), '/p?apikeys=k');
  });

  it('an earlier filter that authenticated the client is not overruled by a later one', () => {
    const consumers = compileConsumers([{ name: 'a', credentials: [{ type: 'key_auth', key: 'key-of-a-123' }] }]);
    const f = createKeyAuth(KeyAuthFilterSchema.parse({ type: 'key_auth' }), consumers);
    const ex = exchange({ headers: { 'x-api-key': 'garbage' } });
    ex.consumer = 'b';
    assert.equal(f.onRequest!(ex), undefined);
    assert.equal(ex.consumer, 'b');
  });
});

describe('credentials', () => {
  it('refuses a private JWK pasted as a verification key', () => {
    assert.throws(
      () => compileConsumers([{ name: 'a', credentials: [{ type: 'jwt_auth', issuer: 'i', keys: [{ kty: 'RSA', n: 'x', e: 'AQAB', d: 'secret' }] } as { type: string }] }]),
      /consumers\[0\]\.credentials\[0\]\.keys\[0\]: give public keys only/,
    );
  });

  it('one issuer picks one consumer', () => {
    const cred = { type: 'jwt_auth', issuer: 'https://id', jwksUrl: 'http://127.0.0.1:1/j' };
    assert.throws(() => compileConsumers([{ name: 'a', credentials: [cred] }, { name: 'b', credentials: [cred] }]), /consumers\[1\]\.credentials\[0\]\.issuer/);
  });

  it('a claim goes upstream as text; a claim with a line break does not go at all', () => {
    assert.equal(claimHeaderValue('abc'), 'abc');
    assert.equal(claimHeaderValue(42), '42');
    assert.equal(claimHeaderValue({ a: 1 }), '{"a":1}');
    assert.equal(claimHeaderValue('a\r\nx-mse-consumer: admin'), undefined);
  });
});

describe('the gate', () => {
  const route = (auth?: RouteConfig['auth']) => ({ name: 'r', auth }) as RouteConfig;

  it('sits after every auth filter and before traffic filters', () => {
    const setup = new AuthSetup({ consumers: [{ name: 'a', credentials: [{ type: 'key_auth', key: 'key-of-a-123' }] }] });
    const key = createKeyAuth(KeyAuthFilterSchema.parse({ type: 'key_auth' }), setup.consumers);
    const traffic = { type: 'flow_control', phase: 'traffic' as const };
    const chains = setup.routeChains(route({ allow: ['a'] }), 0, [], [key, traffic]);
    assert.deepEqual(
      chains.route.map((f) => f.type),
      ['key_auth', 'auth_gate', 'flow_control'],
    );
  });

  it("global auth filters alone: the gate goes into the route's copy of the global chain, before global traffic filters", () => {
    const setup = new AuthSetup({ consumers: [] });
    const key = createKeyAuth(KeyAuthFilterSchema.parse({ type: 'key_auth' }), setup.consumers);
    const traffic = { type: 'cc', phase: 'traffic' as const };
    const global = [key, traffic];
    const chains = setup.routeChains(route(), 0, global, []);
    assert.deepEqual(
      chains.global.map((f) => f.type),
      ['key_auth', 'auth_gate', 'cc'],
    );
    assert.deepEqual(global.map((f) => f.type), ['key_auth', 'cc'], 'the shared global chain is not changed');
    const none = setup.routeChains(route(), 0, [traffic], []);
    assert.deepEqual([none.global.map((f) => f.type), none.route], [['cc'], []], 'no auth filter anywhere: no gate');
  });

  it('a route with auth filters of its own keeps its gate in its own chain (global auth filters may still authenticate first)', () => {
    const setup = new AuthSetup({ consumers: [] });
    const key = createKeyAuth(KeyAuthFilterSchema.parse({ type: 'key_auth' }), setup.consumers);
    const key2 = createKeyAuth(KeyAuthFilterSchema.parse({ type: 'key_auth', header: 'x-other' }), setup.consumers);
    const chains = setup.routeChains(route(), 0, [key], [key2]);
    assert.deepEqual(chains.global.map((f) => f.type), ['key_auth']);
    assert.deepEqual(chains.route.map((f) => f.type), ['key_auth', 'auth_gate']);
  });
});
