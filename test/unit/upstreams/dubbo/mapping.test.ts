import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DubboMethodSchema } from '../../../../src/config/schema.js';
import { buildArgs, compileMethod, matchMethod, orderMethods, type ArgSources, type ResolvedCall } from '../../../../src/upstreams/dubbo/mapping.js';
import { compileParamType, ParamError } from '../../../../src/upstreams/dubbo/params.js';

const method = (m: unknown) => compileMethod(DubboMethodSchema.parse(m));

function sources(p: Partial<ArgSources> & { q?: Record<string, string>; h?: Record<string, string> } = {}): ArgSources {
  return {
    query: (n) => p.q?.[n],
    header: (n) => p.h?.[n],
    body: p.body,
    bodyText: p.bodyText ?? (p.body === undefined ? '' : JSON.stringify(p.body)),
  };
}

function resolve(list: ReturnType<typeof method>[], path: string, verb = 'GET'): ResolvedCall {
  const r = matchMethod(orderMethods(list), path, verb);
  assert.ok('method' in r, `expected ${verb} ${path} to match`);
  return r;
}

describe('http2rpc method matching', () => {
  const getOrder = method({ serviceMethod: 'getOrder', httpPath: '/orders/{id}', httpMethods: ['GET'], params: [{ paramKey: 'id', paramSource: 'PATH', paramType: 'java.lang.Long' }] });
  const search = method({ serviceMethod: 'search', httpPath: '/orders/search', httpMethods: ['GET'] });
  const create = method({ serviceMethod: 'createOrder', httpPath: '/orders', httpMethods: ['post'], paramFromEntireBody: { paramType: 'com.example.Order' } });

  it('matches path templates, capturing decoded variables', () => {
    const r = resolve([getOrder, search, create], '/orders/a%20b');
    assert.equal(r.method.serviceMethod, 'getOrder');
    assert.deepEqual(r.pathVars, { id: 'a b' });
    assert.equal(resolve([getOrder, create], '/orders/', 'POST').method.serviceMethod, 'createOrder');
  });

  it('prefers a literal path over a template, whatever the config order', () => {
    assert.equal(resolve([getOrder, search], '/orders/search').method.serviceMethod, 'search');
  });

  it('answers not found for unmapped paths and not allowed (with the allowed methods) for a wrong verb', () => {
    assert.deepEqual(matchMethod([getOrder, create], '/orders/1/items', 'GET'), { notFound: true });
    assert.deepEqual(matchMethod([getOrder, create], '/other', 'GET'), { notFound: true });
    assert.deepEqual(matchMethod([getOrder, create], '/orders/1', 'DELETE'), { notAllowed: ['GET'] });
    assert.deepEqual(matchMethod([getOrder, create], '/orders', 'GET'), { notAllowed: ['POST'] });
  });

  it('refuses a PATH parameter the path does not capture, naming the key', () => {
    assert.throws(
      () => method({ serviceMethod: 'x', httpPath: '/a/{b}', params: [{ paramKey: 'c', paramSource: 'PATH', paramType: 'java.lang.String' }] }),
      /params\[0\]\.paramKey: httpPath \/a\/\{b\} has no \{c\}/,
    );
    assert.throws(() => method({ serviceMethod: 'x', httpPath: '/a/b{c}' }), /whole segment/);
  });

  it('lists the Java types in argument order, the entire body last', () => {
    const m = method({
      serviceMethod: 'x',
      httpPath: '/x/{id}',
      params: [
        { paramKey: 'id', paramSource: 'PATH', paramType: 'long' },
        { paramKey: 'ids', paramSource: 'QUERY', paramType: 'java.util.List<java.lang.Long>' },
      ],
      paramFromEntireBody: { paramType: 'com.example.Order' },
    });
    assert.deepEqual(m.types, ['long', 'java.util.List', 'com.example.Order']);
  });

  it('parses headersAttach: none, all, or a list', () => {
    assert.equal(method({ serviceMethod: 'x', httpPath: '/x' }).attach, 'none');
    assert.equal(method({ serviceMethod: 'x', httpPath: '/x', headersAttach: '*' }).attach, 'all');
    assert.deepEqual(method({ serviceMethod: 'x', httpPath: '/x', headersAttach: 'X-Tenant, x-user' }).attach, ['x-tenant', 'x-user']);
  });
});

describe('http2rpc arguments', () => {
  const m = method({
    serviceMethod: 'find',
    httpPath: '/orders/{id}',
    params: [
      { paramKey: 'id', paramSource: 'PATH', paramType: 'java.lang.Long' },
      { paramKey: 'limit', paramSource: 'QUERY', paramType: 'int' },
      { paramKey: 'X-Tenant', paramSource: 'HEADER', paramType: 'java.lang.String' },
      { paramKey: 'price', paramSource: 'BODY', paramType: 'java.math.BigDecimal' },
    ],
  });

  it('takes values from path, query, header and body, typed for hessian', () => {
    const call = resolve([m], '/orders/42');
    const args = buildArgs(call, sources({ q: { limit: '10' }, h: { 'x-tenant': 'acme' }, body: { price: 9.5 } }));
    assert.deepEqual(args, [{ $class: 'java.lang.Long', $: 42 }, 10, 'acme', '9.5']);
  });

  it('rejects a non-numeric Long with a 400-style error naming the parameter', () => {
    assert.throws(() => buildArgs(resolve([m], '/orders/abc'), sources({ q: { limit: '1' } })), (e: Error) => {
      assert.ok(e instanceof ParamError);
      assert.match(e.message, /parameter "id" \(path, java\.lang\.Long\): expected a 64-bit integer, got "abc"/);
      return true;
    });
  });

  it('requires primitives and passes null for a missing boxed value', () => {
    assert.throws(() => buildArgs(resolve([m], '/orders/1'), sources()), /parameter "limit" \(query, int\) is required/);
    const args = buildArgs(resolve([m], '/orders/1'), sources({ q: { limit: '1' } }));
    assert.equal(args[2], null);
    assert.equal(args[3], null);
  });

  it('takes the entire body as a POJO with its class, or refuses an empty body', () => {
    const c = method({ serviceMethod: 'createOrder', httpPath: '/orders', paramFromEntireBody: { paramType: 'com.example.Order' } });
    const call = resolve([c], '/orders');
    assert.deepEqual(buildArgs(call, sources({ body: { item: 'book', quantity: 2 } })), [{ class: 'com.example.Order', item: 'book', quantity: 2 }]);
    assert.deepEqual(buildArgs(call, sources({ body: { class: 'com.example.SpecialOrder', item: 'x' } })), [{ class: 'com.example.SpecialOrder', item: 'x' }]);
    assert.throws(() => buildArgs(call, sources()), /request body \(com\.example\.Order\) is required/);
    assert.throws(() => buildArgs(call, sources({ body: [1, 2] })), /request body \(com\.example\.Order\): expected a JSON object/);
  });

  it('takes a plain-text body for a String', () => {
    const c = method({ serviceMethod: 'echo', httpPath: '/echo', paramFromEntireBody: { paramType: 'java.lang.String' } });
    assert.deepEqual(buildArgs(resolve([c], '/echo'), sources({ bodyText: 'hello there' })), ['hello there']);
    assert.deepEqual(buildArgs(resolve([c], '/echo'), sources({ body: 'quoted', bodyText: '"quoted"' })), ['quoted']);
  });
});

describe('Java type conversion', () => {
  const conv = (type: string, v: unknown, fromText = true) => compileParamType(type).convert(v, fromText);

  it('checks integer ranges per type', () => {
    assert.equal(conv('java.lang.Integer', '2147483647'), 2147483647);
    assert.throws(() => conv('int', '2147483648'), /32-bit integer/);
    assert.throws(() => conv('short', '40000'), /16-bit integer/);
    assert.throws(() => conv('byte', 1.5, false), /8-bit integer/);
    assert.deepEqual(conv('long', '-9223372036854775808'), { $class: 'java.lang.Long', $: '-9223372036854775808' });
    assert.throws(() => conv('long', '9223372036854775808'), /64-bit integer/);
    assert.throws(() => conv('long', 2 ** 60, false), /64-bit integer/);
  });

  it('converts doubles, booleans, decimals and dates', () => {
    assert.deepEqual(conv('double', '1'), { $class: 'double', $: 1 });
    assert.throws(() => conv('java.lang.Double', 'NaN'), /a number/);
    assert.equal(conv('boolean', 'TRUE'), true);
    assert.throws(() => conv('java.lang.Boolean', 'yes'), /true or false/);
    assert.equal(conv('java.math.BigDecimal', '123.4500'), '123.4500');
    assert.throws(() => conv('java.math.BigDecimal', '12a'), /decimal/);
    assert.equal((conv('java.util.Date', '2024-05-01T00:00:00Z') as Date).toISOString(), '2024-05-01T00:00:00.000Z');
    assert.equal((conv('java.util.Date', '0') as Date).getTime(), 0);
    assert.throws(() => conv('java.util.Date', 'yesterday'), /ISO-8601/);
  });

  it('reads lists from JSON or comma-separated text, converting typed elements', () => {
    assert.deepEqual(conv('java.util.List<java.lang.Long>', '1,2'), [
      { $class: 'java.lang.Long', $: 1 },
      { $class: 'java.lang.Long', $: 2 },
    ]);
    assert.deepEqual(conv('java.util.List', '["a","b"]'), ['a', 'b']);
    assert.deepEqual(conv('java.lang.String[]', 'x,y'), ['x', 'y']);
    assert.throws(() => conv('java.util.List<java.lang.Integer>', '1,b'), /\[1\]: expected a 32-bit integer/);
    assert.throws(() => conv('java.util.List', { a: 1 }, false), /JSON array/);
  });

  it('reads maps and POJOs from JSON text in a query or header', () => {
    assert.deepEqual(conv('java.util.Map', '{"a":1}'), { a: 1 });
    assert.deepEqual(conv('com.example.Filter', '{"status":"NEW"}'), { class: 'com.example.Filter', status: 'NEW' });
    assert.throws(() => conv('com.example.Filter', 'NEW'), /JSON object for com\.example\.Filter/);
  });
});
