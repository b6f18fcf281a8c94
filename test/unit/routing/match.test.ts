import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { compilePathMatch, compileStringMatch } from '../../../src/routing/match.js';
import { normalizeHost, normalizePath } from '../../../src/exchange/normalize.js';
import { parseStaticEndpoint } from '../../../registries/static/index.js';

describe('matchers', () => {
  it('prefix matching is segment-aware', () => {
    const m = compilePathMatch({ prefix: '/users' });
    assert.ok(m.test('/users') && m.test('/users/') && m.test('/users/1'));
    assert.ok(!m.test('/usersx') && !m.test('/user'));
    const slash = compilePathMatch({ prefix: '/api/' });
    assert.ok(slash.test('/api/x') && !slash.test('/api'));
  });

  it('regex paths and header regexes match the whole value', () => {
    assert.ok(compilePathMatch({ regex: '/items/[0-9]+' }).test('/items/12'));
    assert.ok(!compilePathMatch({ regex: '/items/[0-9]+' }).test('/items/12/x'));
    assert.ok(compileStringMatch({ regex: 'pro.' })('prod'));
    assert.ok(!compileStringMatch({ regex: 'pro' })('prod'));
    assert.ok(compileStringMatch({ present: false })(undefined));
    assert.ok(compileStringMatch({ contains: 'et' })('beta'));
  });

  it('dot segments and duplicate slashes cannot slip past a route', () => {
    assert.equal(normalizePath('/public/../admin'), '/admin');
    assert.equal(normalizePath('/a//b/./c'), '/a/b/c');
    assert.equal(normalizePath('/a/%2e%2e/b'), '/b');
    assert.equal(normalizePath('/plain/path'), '/plain/path');
  });

  it('hosts are compared without port and case', () => {
    assert.equal(normalizeHost('API.Example.com:8080'), 'api.example.com');
    assert.equal(normalizeHost('[::1]:80'), '[::1]');
  });

  it('static endpoints: host:port, weight and metadata words', () => {
    assert.deepEqual(parseStaticEndpoint('127.0.0.1:9002 weight=3 zone=b'), { host: '127.0.0.1', port: 9002, weight: 3, healthy: true, metadata: { zone: 'b' } });
    assert.throws(() => parseStaticEndpoint('127.0.0.1'), /host:port/);
    assert.throws(() => parseStaticEndpoint('127.0.0.1:80 weight'), /key=value/);
  });
});
