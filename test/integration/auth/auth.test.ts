// Consumers and authentication through a real gateway: key_auth, basic_auth,
// jwt_auth (keys from a JWKS server on 127.0.0.1), hmac_auth (with a body
// digest), route allow lists, the anonymous consumer, identity headers, the
// access log and gRPC statuses. Tried as a client with wrong, forged, stale
// and borrowed credentials would.
import assert from 'node:assert/strict';
import { createHash, createHmac } from 'node:crypto';
import http, { type IncomingHttpHeaders } from 'node:http';
import http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey } from 'jose';
import { request } from 'undici';
import type { Gateway } from '../../../src/gateway.js';
import { hashPassword } from '../../../src/filters/auth/password.js';
import { startGateway } from '../../helpers/gateway.js';
import { sendRaw } from '../../helpers/raw-http.js';
import { freePort, startUpstream, type TestUpstream } from '../../helpers/upstream.js';

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

async function send(base: string, path: string, headers: Record<string, string> = {}, method = 'GET', body?: string): Promise<Answer> {
  const r = await request(`${base}${path}`, { method: method as 'GET', headers, body });
  return { status: r.statusCode, headers: r.headers, body: await r.body.text() };
}

/** The request headers the echo upstream saw. */
const seenHeaders = (a: Answer): IncomingHttpHeaders => (JSON.parse(a.body) as { headers: IncomingHttpHeaders }).headers;

function assertFlag(a: Answer, status: number): void {
  assert.equal(a.status, status, a.body);
  assert.equal(a.headers['x-meshgate-flag'], 'UA');
  assert.equal((JSON.parse(a.body) as { flag: string }).flag, 'UA');
}

const MOBILE_KEY = 'mobile-key-0123456789';

describe('consumers and authentication', () => {
  let up: TestUpstream;
  let canaryUp: TestUpstream;
  let gw: Gateway;
  let base: string;
  const log: string[] = [];
  let jwks: http.Server;
  let jwksHits = 0;
  let jwksUrl: string;
  let privateKey: CryptoKey;
  let otherKey: CryptoKey;

  before(async () => {
    up = await startUpstream();
    canaryUp = await startUpstream('canary');
    const pair = await generateKeyPair('RS256', { extractable: true });
    privateKey = pair.privateKey;
    otherKey = (await generateKeyPair('RS256')).privateKey;
    const jwk = { ...(await exportJWK(pair.publicKey)), kid: 'k1', alg: 'RS256', use: 'sig' };
    jwks = http.createServer((_req, res) => {
      jwksHits++;
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ keys: [jwk] }));
    });
    await new Promise<void>((r) => jwks.listen(0, '127.0.0.1', () => r()));
    jwksUrl = `http://127.0.0.1:${(jwks.address() as AddressInfo).port}/.well-known/jwks.json`;
    const backends = [{ service: 'up.static' }];
    gw = await startGateway(
      {
        registries: [
          { name: 'up', type: 'static', endpoints: [up.address] },
          { name: 'cy', type: 'static', endpoints: [canaryUp.address] },
        ],
        consumers: [
          { name: 'mobile', credentials: [{ type: 'key_auth', key: MOBILE_KEY }] },
          { name: 'web', credentials: [{ type: 'key_auth', key: 'web-key-0123456789' }, { type: 'basic_auth', username: 'alice', password: await hashPassword('wonderland', { N: 1024 }) }] },
          { name: 'partner', credentials: [{ type: 'jwt_auth', issuer: 'https://id.partner.example', jwksUrl, audience: 'meshgate' }] },
          { name: 'batch', credentials: [{ type: 'hmac_auth', keyId: 'batch-key', secret: 'batch-secret-0123456789' }] },
          { name: 'guest' },
          { name: 'dead', credentials: [{ type: 'jwt_auth', issuer: 'https://dead.example', jwksUrl: `http://127.0.0.1:${await freePort()}/jwks.json` }] },
        ],
        routes: [
          { name: 'keys', match: { path: { prefix: '/keys' } }, backends, filters: [{ type: 'key_auth' }], auth: { allow: ['mobile'] } },
          { name: 'keys-any', match: { path: { prefix: '/any' } }, backends, filters: [{ type: 'key_auth', hideCredentials: true }] },
          { name: 'keys-query', match: { path: { prefix: '/q' } }, backends, filters: [{ type: 'key_auth', query: 'apikey', hideCredentials: true }] },
          { name: 'anon', match: { path: { prefix: '/anon' } }, backends, filters: [{ type: 'key_auth' }], auth: { allow: ['mobile'], anonymous: 'guest' } },
          { name: 'basic', match: { path: { prefix: '/basic' } }, backends, filters: [{ type: 'basic_auth', hideCredentials: true }] },
          { name: 'multi', match: { path: { prefix: '/multi' } }, backends, filters: [{ type: 'key_auth' }, { type: 'basic_auth' }, { type: 'jwt_auth' }] },
          {
            name: 'jwt',
            match: { path: { prefix: '/jwt' } },
            backends,
            filters: [{ type: 'jwt_auth', claimsToHeaders: [{ claim: 'sub', header: 'x-jwt-sub' }, { claim: 'roles', header: 'x-jwt-roles' }] }],
          },
          { name: 'jwt-strict', match: { path: { prefix: '/strict-jwt' } }, backends, filters: [{ type: 'jwt_auth', clockToleranceSec: 0 }] },
          { name: 'hmac', match: { path: { prefix: '/hmac' } }, backends, filters: [{ type: 'hmac_auth', validateRequestBody: true, hideCredentials: true }] },
          { name: 'canary', match: { path: { prefix: '/canary' } }, backends, canary: { byConsumer: ['web'], backends: [{ service: 'cy.static' }] }, filters: [{ type: 'key_auth' }] },
          {
            name: 'limited',
            match: { path: { prefix: '/limited' } },
            backends,
            filters: [{ type: 'key_auth' }, { type: 'flow_control', rules: [{ count: 2, intervalSec: 60, key: { consumer: true } }] }],
          },
          { name: 'open', match: { path: { prefix: '/' } }, backends },
        ],
      },
      { accessLog: { write: (line: string) => void log.push(line) } },
    );
    base = gw.listenerUrl();
  });

  after(async () => {
    await gw?.stop();
    await up?.close();
    await canaryUp?.close();
    jwks?.closeAllConnections();
    await new Promise<void>((r) => (jwks ? jwks.close(() => r()) : r()));
  });

  describe('key_auth and allow lists', () => {
    it('no key: 401, flag UA, a WWW-Authenticate challenge; nothing reaches the upstream', async () => {
      const before = up.seen.length;
      const a = await send(base, '/keys/x');
      assertFlag(a, 401);
      assert.match(String(a.headers['www-authenticate']), /^Key realm="meshgate", header="x-api-key"/);
      assert.equal(up.seen.length, before);
    });

    it('a wrong key, or a right key with one character changed, is 401', async () => {
      assertFlag(await send(base, '/keys/x', { 'x-api-key': 'nope' }), 401);
      assertFlag(await send(base, '/keys/x', { 'x-api-key': `${MOBILE_KEY.slice(0, -1)}X` }), 401);
    });

    it('the right key passes; the upstream learns the consumer from x-mse-consumer', async () => {
      const a = await send(base, '/keys/x', { 'x-api-key': MOBILE_KEY });
      assert.equal(a.status, 200, a.body);
      assert.equal(seenHeaders(a)['x-mse-consumer'], 'mobile');
    });

    it('a client cannot name itself: its x-mse-consumer is replaced, and dropped on routes without auth', async () => {
      const a = await send(base, '/keys/x', { 'x-api-key': MOBILE_KEY, 'x-mse-consumer': 'admin' });
      assert.equal(seenHeaders(a)['x-mse-consumer'], 'mobile');
      const open = await send(base, '/plain', { 'x-mse-consumer': 'admin', 'x-jwt-sub': 'root' });
      assert.equal(open.status, 200);
      assert.equal(seenHeaders(open)['x-mse-consumer'], undefined);
      assert.equal(seenHeaders(open)['x-jwt-sub'], undefined, 'configured claim headers are identity headers too');
    });

    it('an authenticated consumer the route does not allow gets 403, not 401', async () => {
      const a = await send(base, '/keys/x', { 'x-api-key': 'web-key-0123456789' });
      assertFlag(a, 403);
      assert.equal(a.headers['www-authenticate'], undefined);
    });

    it('hideCredentials removes the key header, or the query parameter, before the upstream', async () => {
      const h = await send(base, '/any', { 'x-api-key': MOBILE_KEY });
      assert.equal(h.status, 200);
      assert.equal(seenHeaders(h)['x-api-key'], undefined);
      const q = await send(base, `/q/path?a=1&apikey=${MOBILE_KEY}&b=2`);
      assert.equal(q.status, 200, q.body);
      assert.equal((JSON.parse(q.body) as { url: string }).url, '/q/path?a=1&b=2');
      assert.equal(seenHeaders(q)['x-mse-consumer'], 'mobile');
    });

    it('no credentials on a route with an anonymous consumer: it passes as that consumer; bad credentials stay 401', async () => {
      const a = await send(base, '/anon');
      assert.equal(a.status, 200, a.body);
      assert.equal(seenHeaders(a)['x-mse-consumer'], 'guest');
      assertFlag(await send(base, '/anon', { 'x-api-key': 'wrong-key' }), 401);
      assertFlag(await send(base, '/anon', { 'x-api-key': 'web-key-0123456789' }), 403);
    });

    it('canary byConsumer: the listed consumer goes to the canary, others to the main backends', async () => {
      const web = await send(base, '/canary', { 'x-api-key': 'web-key-0123456789' });
      const mobile = await send(base, '/canary', { 'x-api-key': MOBILE_KEY });
      assert.equal((JSON.parse(web.body) as { instance: string }).instance, 'canary');
      assert.equal((JSON.parse(mobile.body) as { instance: string }).instance, 'u');
    });

    it('a flow_control rule keyed by consumer limits each consumer separately', async () => {
      const codes = async (key: string) => {
        const out: number[] = [];
        for (let i = 0; i < 3; i++) out.push((await send(base, '/limited', { 'x-api-key': key })).status);
        return out;
      };
      assert.deepEqual(await codes(MOBILE_KEY), [200, 200, 429]);
      assert.deepEqual(await codes('web-key-0123456789'), [200, 200, 429], 'another consumer has its own count');
    });

    it('the access log names the consumer, never the credential', async () => {
      await send(base, '/keys/logged', { 'x-api-key': MOBILE_KEY });
      const line = log.map((l) => JSON.parse(l) as { path: string; consumer?: string }).find((l) => l.path === '/keys/logged');
      assert.equal(line?.consumer, 'mobile');
      assert.ok(!log.join('').includes(MOBILE_KEY));
    });
  });

  describe('basic_auth', () => {
    const basic = (u: string, p: string) => ({ authorization: `Basic ${Buffer.from(`${u}:${p}`).toString('base64')}` });

    it('the right password passes (and is not passed on with hideCredentials); the log has no password', async () => {
      const a = await send(base, '/basic', basic('alice', 'wonderland'));
      assert.equal(a.status, 200, a.body);
      assert.equal(seenHeaders(a)['x-mse-consumer'], 'web');
      assert.equal(seenHeaders(a).authorization, undefined);
      assert.ok(!log.join('').includes('wonderland'));
    });

    it('a wrong password, an unknown user, garbage: 401 with a Basic challenge', async () => {
      for (const h of [basic('alice', 'wonderlan'), basic('mallory', 'wonderland'), { authorization: 'Basic !!!' }]) {
        const a = await send(base, '/basic', h);
        assertFlag(a, 401);
        assert.match(String(a.headers['www-authenticate']), /^Basic realm="meshgate"/);
        assert.ok(!a.body.includes('wonderlan'));
      }
    });
  });

  describe('jwt_auth', () => {
    const token = (claims: Record<string, unknown> = {}, opts: { key?: CryptoKey; alg?: string; exp?: string | number; iss?: string; aud?: string } = {}) =>
      new SignJWT({ sub: 'svc-42', roles: ['a', 'b'], ...claims })
        .setProtectedHeader({ alg: opts.alg ?? 'RS256', kid: 'k1' })
        .setIssuer(opts.iss ?? 'https://id.partner.example')
        .setAudience(opts.aud ?? 'meshgate')
        .setIssuedAt()
        .setExpirationTime(opts.exp ?? '5m')
        .sign(opts.key ?? privateKey);

    it('a valid token passes: consumer and selected claims go upstream; the key set is fetched once', async () => {
      const t = await token();
      for (let i = 0; i < 3; i++) {
        const a = await send(base, '/jwt', { authorization: `Bearer ${t}` });
        assert.equal(a.status, 200, a.body);
        const h = seenHeaders(a);
        assert.equal(h['x-mse-consumer'], 'partner');
        assert.equal(h['x-jwt-sub'], 'svc-42');
        assert.equal(h['x-jwt-roles'], '["a","b"]');
      }
      assert.equal(jwksHits, 1, 'the JWKS is cached');
    });

    it('a token verified once is taken again without a new check, but never past its exp', async () => {
      const exp = Math.floor(Date.now() / 1000) + 2;
      const t = await token({}, { exp });
      for (let i = 0; i < 3; i++) assert.equal((await send(base, '/strict-jwt', { authorization: `Bearer ${t}` })).status, 200);
      await new Promise((r) => setTimeout(r, exp * 1000 - Date.now() + 100));
      const late = await send(base, '/strict-jwt', { authorization: `Bearer ${t}` });
      assert.equal(late.status, 401, late.body);
      assert.match(String(late.headers['www-authenticate']), /token expired/);
      // A tampered copy of a remembered token is not the remembered token.
      const fresh = await token();
      assert.equal((await send(base, '/strict-jwt', { authorization: `Bearer ${fresh}` })).status, 200);
      const [h, p, sig] = fresh.split('.');
      const forged = `${h}.${Buffer.from(JSON.stringify({ ...JSON.parse(Buffer.from(p!, 'base64url').toString()), sub: 'root' })).toString('base64url')}.${sig}`;
      assert.equal((await send(base, '/strict-jwt', { authorization: `Bearer ${forged}` })).status, 401);
    });

    it('a client-sent claim header is replaced by the verified claim', async () => {
      const a = await send(base, '/jwt', { authorization: `Bearer ${await token()}`, 'x-jwt-sub': 'root' });
      assert.deepEqual(seenHeaders(a)['x-jwt-sub'], 'svc-42');
    });

    it('alg none, a forged signature, an expired token, a wrong audience, an unknown issuer: all 401 invalid_token', async () => {
      const good = await token();
      const [h, p] = good.split('.');
      const none = `${Buffer.from(JSON.stringify({ alg: 'none', typ: 'JWT' })).toString('base64url')}.${p}.`;
      const forgedPayload = Buffer.from(JSON.stringify({ ...JSON.parse(Buffer.from(p!, 'base64url').toString()), sub: 'root' })).toString('base64url');
      const cases = {
        none,
        'tampered payload': `${h}.${forgedPayload}.${good.split('.')[2]}`,
        'other key': await token({}, { key: otherKey }),
        expired: await token({}, { exp: Math.floor(Date.now() / 1000) - 3600 }),
        audience: await token({}, { aud: 'someone-else' }),
        issuer: await token({}, { iss: 'https://evil.example' }),
        garbage: 'not.a.jwt',
      };
      for (const [name, t] of Object.entries(cases)) {
        const a = await send(base, '/jwt', { authorization: `Bearer ${t}` });
        assert.equal(a.status, 401, `${name}: ${a.body}`);
        assert.match(String(a.headers['www-authenticate']), /^Bearer realm="meshgate", error="invalid_token"/, name);
      }
    });

    it('an issuer whose JWKS cannot be fetched: 401, not a hang or a 500', async () => {
      const a = await send(base, '/jwt', { authorization: `Bearer ${await token({}, { iss: 'https://dead.example' })}` });
      assertFlag(a, 401);
      assert.match(String(a.headers['www-authenticate']), /signing keys unavailable/);
    });

    it('HS256 signed with the RSA public key (algorithm confusion) is refused', async () => {
      const pub = JSON.stringify(await exportJWK(privateKey));
      const t = await new SignJWT({ sub: 'x' })
        .setProtectedHeader({ alg: 'HS256', kid: 'k1' })
        .setIssuer('https://id.partner.example')
        .setAudience('meshgate')
        .setExpirationTime('5m')
        .sign(new TextEncoder().encode(pub));
      assertFlag(await send(base, '/jwt', { authorization: `Bearer ${t}` }), 401);
    });

    it('with key_auth, basic_auth and jwt_auth on one route, any one credential is enough; none gets every challenge', async () => {
      assert.equal((await send(base, '/multi', { 'x-api-key': MOBILE_KEY })).status, 200);
      assert.equal((await send(base, '/multi', { authorization: `Bearer ${await token()}` })).status, 200);
      const none = await send(base, '/multi');
      assertFlag(none, 401);
      const challenge = String(none.headers['www-authenticate']);
      for (const scheme of ['Key realm', 'Basic realm', 'Bearer realm']) assert.ok(challenge.includes(scheme), challenge);
    });
  });

  const signedFor = (method: string, path: string, body: string, opts: { date?: string; secret?: string; headers?: string; digest?: string } = {}) => {
    const date = opts.date ?? new Date().toUTCString();
    const digest = opts.digest ?? `SHA-256=${createHash('sha256').update(body).digest('base64')}`;
    const list = opts.headers ?? '@request-target date digest';
    const values: Record<string, string> = { date, digest };
    let s = 'batch-key\n';
    for (const h of list.split(' ')) s += h === '@request-target' ? `${method} ${path}\n` : `${h}: ${values[h]}\n`;
    const sig = createHmac('sha256', opts.secret ?? 'batch-secret-0123456789').update(s).digest('base64');
    return { date, digest, authorization: `Signature keyId="batch-key",algorithm="hmac-sha256",headers="${list}",signature="${sig}"`, 'content-type': 'application/json' };
  };

  describe('hmac_auth', () => {
    it('a signed request with a matching body digest passes; the upstream gets the body unchanged', async () => {
      const body = JSON.stringify({ order: 7, items: 'x'.repeat(5000) });
      const a = await send(base, '/hmac/orders?x=1', signedFor('POST', '/hmac/orders?x=1', body), 'POST', body);
      assert.equal(a.status, 200, a.body);
      const echo = JSON.parse(a.body) as { headers: IncomingHttpHeaders; bodyBytes: number };
      assert.equal(echo.headers['x-mse-consumer'], 'batch');
      assert.equal(echo.bodyBytes, Buffer.byteLength(body));
      assert.equal(echo.headers.authorization, undefined, 'hideCredentials');
    });

    it('a changed body, path, secret or stale Date is refused with 401', async () => {
      const body = '{"order":7}';
      const cases: Array<[string, Answer]> = [
        ['body', await send(base, '/hmac/o', signedFor('POST', '/hmac/o', body), 'POST', '{"order":8}')],
        ['path', await send(base, '/hmac/other', signedFor('POST', '/hmac/o', body), 'POST', body)],
        ['secret', await send(base, '/hmac/o', signedFor('POST', '/hmac/o', body, { secret: 'guessed-secret-000000' }), 'POST', body)],
        ['stale date', await send(base, '/hmac/o', signedFor('POST', '/hmac/o', body, { date: new Date(Date.now() - 10 * 60_000).toUTCString() }), 'POST', body)],
        ['date not signed', await send(base, '/hmac/o', signedFor('POST', '/hmac/o', body, { headers: '@request-target digest' }), 'POST', body)],
        ['digest not signed', await send(base, '/hmac/o', signedFor('POST', '/hmac/o', body, { headers: '@request-target date' }), 'POST', body)],
      ];
      for (const [name, a] of cases) {
        assert.equal(a.status, 401, `${name}: ${a.body}`);
        assert.match(String(a.headers['www-authenticate']), /^Signature realm="meshgate"/, name);
      }
    });
  });

  describe('hmac_auth over raw connections', () => {
    it('checks the body digest the same whether the body comes with the head or after it', async () => {
      const { port } = new URL(base);
      const body = JSON.stringify({ order: 9, note: 'x'.repeat(300) });
      for (const sent of [body, body.replace('9', '8')]) {
        for (const split of [false, true]) {
          const headers = { ...signedFor('POST', '/hmac/raw', body), host: 'x', 'content-length': String(Buffer.byteLength(sent)) };
          const head = Buffer.from(`POST /hmac/raw HTTP/1.1\r\n${Object.entries(headers).map(([k, v]) => `${k}: ${v}\r\n`).join('')}\r\n`);
          const r = await sendRaw(Number(port), split ? [head, Buffer.from(sent)] : Buffer.concat([head, Buffer.from(sent)]), { gapMs: 30 });
          const what = `${sent === body ? 'signed body' : 'changed body'}, ${split ? 'after the head' : 'one write'}`;
          if (sent === body) {
            assert.equal(r.finals[0]?.status, 200, what);
            assert.equal((JSON.parse(r.finals[0]!.body) as { bodyBytes: number }).bodyBytes, Buffer.byteLength(body), what);
          } else assert.equal(r.finals[0]?.status, 401, what);
        }
      }
    });
  });

  describe('gRPC clients', () => {
    const call = (path: string, headers: Record<string, string> = {}) =>
      new Promise<IncomingHttpHeaders>((resolve, reject) => {
        const c = http2.connect(base);
        c.on('error', reject);
        const s = c.request({ ':method': 'POST', ':path': path, 'content-type': 'application/grpc', te: 'trailers', ...headers });
        s.on('response', (h) => {
          s.resume();
          s.on('end', () => {
            c.close();
            resolve(h as IncomingHttpHeaders);
          });
        });
        s.on('error', reject);
        s.end();
      });

    it('no credentials: UNAUTHENTICATED (16); a consumer not allowed: PERMISSION_DENIED (7)', async () => {
      assert.equal((await call('/keys/pkg.Svc/M'))['grpc-status'], '16');
      assert.equal((await call('/keys/pkg.Svc/M', { 'x-api-key': 'web-key-0123456789' }))['grpc-status'], '7');
    });
  });
});

describe('global auth filters', () => {
  it("apply to every route; global rules keyed by consumer already see the route's anonymous consumer", async () => {
    const direct = { status: 200, body: 'ok' };
    const gw = await startGateway({
      consumers: [{ name: 'app', credentials: [{ type: 'key_auth', key: 'app-key-0123456789' }] }, { name: 'guest' }],
      filters: [{ type: 'key_auth' }, { type: 'flow_control', rules: [{ count: 1, intervalSec: 60, key: { consumer: true }, match: { exact: 'guest' } }] }],
      routes: [
        { name: 'public', match: { path: { prefix: '/public' } }, directResponse: direct, auth: { anonymous: 'guest' } },
        { name: 'private', match: { path: { prefix: '/' } }, directResponse: direct },
      ],
    });
    try {
      const base = gw.listenerUrl();
      assertFlag(await send(base, '/private'), 401);
      assert.equal((await send(base, '/private', { 'x-api-key': 'app-key-0123456789' })).status, 200);
      assert.equal((await send(base, '/public')).status, 200, 'the first anonymous request');
      assert.equal((await send(base, '/public')).status, 429, 'the global rule counted it as guest');
      assert.equal((await send(base, '/public', { 'x-api-key': 'app-key-0123456789' })).status, 200, 'an authenticated client is not guest');
    } finally {
      await gw.stop();
    }
  });
});

describe('consumers on reload', () => {
  it('a reload that replaces a key revokes the old one at once and admits the new one', async () => {
    const cfg = (key: string) => ({
      consumers: [{ name: 'mobile', credentials: [{ type: 'key_auth', key }] }],
      routes: [{ name: 'r', match: { path: { prefix: '/' } }, directResponse: { status: 200, body: 'ok' }, filters: [{ type: 'key_auth' }] }],
    });
    const gw = await startGateway(cfg('first-key-0123456789'));
    try {
      const base = gw.listenerUrl();
      assert.equal((await send(base, '/', { 'x-api-key': 'first-key-0123456789' })).status, 200);
      const r = await gw.reload({ listeners: [{ name: 'public', address: '127.0.0.1:0' }], admin: { address: '127.0.0.1:0' }, ...cfg('second-key-0123456789') } as never);
      assert.equal(r.ok, true, JSON.stringify(r));
      const base2 = gw.listenerUrl();
      assertFlag(await send(base2, '/', { 'x-api-key': 'first-key-0123456789' }), 401);
      assert.equal((await send(base2, '/', { 'x-api-key': 'second-key-0123456789' })).status, 200);
    } finally {
      await gw.stop();
    }
  });
});

describe('auth config errors name the key', () => {
  const bad = async (partial: Record<string, unknown>, key: RegExp): Promise<void> => {
    await assert.rejects(startGateway({ registries: [{ name: 'up', type: 'static', endpoints: ['127.0.0.1:9'] }], ...partial }), (e: Error & { problems?: string[] }) => {
      const text = [e.message, ...(e.problems ?? [])].join('\n');
      assert.match(text, key);
      return true;
    });
  };
  const route = (extra: Record<string, unknown>) => ({ name: 'r', match: { path: { prefix: '/' } }, backends: [{ service: 'up.static' }], ...extra });

  it('auth.allow on a route no auth filter applies to', async () => {
    await bad({ consumers: [{ name: 'a', credentials: [{ type: 'key_auth', key: 'aaaaaaaaaaaa' }] }], routes: [route({ auth: { allow: ['a'] } })] }, /routes\[0\]\.auth\.allow: no auth filter/);
  });

  it('an allow list naming an unknown consumer', async () => {
    await bad({ routes: [route({ auth: { allow: ['ghost'] }, filters: [{ type: 'key_auth' }] })] }, /routes\[0\]\.auth\.allow\[0\]: unknown consumer "ghost"/);
  });

  it('a basic_auth password in clear', async () => {
    await bad({ consumers: [{ name: 'a', credentials: [{ type: 'basic_auth', username: 'a', password: 'hunter2' }] }] }, /consumers\[0\]\.credentials\[0\]\.password: must be a scrypt hash/);
  });

  it('HS256 allowed on a credential with public keys (algorithm confusion)', async () => {
    await bad(
      { consumers: [{ name: 'a', credentials: [{ type: 'jwt_auth', issuer: 'i', jwksUrl: 'http://127.0.0.1:1/jwks', algorithms: ['RS256', 'HS256'] }] }] },
      /consumers\[0\]\.credentials\[0\]\.algorithms: HS256 need an inline secret/,
    );
  });

  it('alg none is not an algorithm one can allow', async () => {
    await bad({ consumers: [{ name: 'a', credentials: [{ type: 'jwt_auth', issuer: 'i', jwksUrl: 'http://127.0.0.1:1/jwks', algorithms: ['none'] }] }] }, /consumers\[0\]\.credentials\[0\]\.algorithms\[0\]/);
  });

  it('the same API key given to two consumers', async () => {
    await bad(
      { consumers: [{ name: 'a', credentials: [{ type: 'key_auth', key: 'same-key-123' }] }, { name: 'b', credentials: [{ type: 'key_auth', key: 'same-key-123' }] }] },
      /consumers\[1\]\.credentials\[0\]\.key: the same key is given to consumers "a" and "b"/,
    );
  });
});

