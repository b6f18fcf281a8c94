// The lean AsyncResource.prototype.bind against Node's own, side by side:
// everything a caller can observe of a bound function must be the same.
import assert from 'node:assert/strict';
import { AsyncLocalStorage, AsyncResource, executionAsyncId } from 'node:async_hooks';
import http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import { after, describe, it } from 'node:test';
import { _leanBindForTests as leanBind, _nodeBindForTests as nodeBind, installLeanAsyncResourceBind, restoreNodeAsyncResourceBind } from '../../../src/upstreams/async-resource-bind.js';

type BindFn = typeof AsyncResource.prototype.bind;
const IMPLS: [string, BindFn][] = [
  ['node', nodeBind],
  ['lean', leanBind as BindFn],
];

/** What a caller can see of one bound function, made by `bind` and called in several ways. */
function observe(bind: BindFn, fn: (...a: never[]) => unknown, thisArg?: unknown): Record<string, unknown> {
  const als = new AsyncLocalStorage<string>();
  let resource!: AsyncResource;
  als.run('at creation', () => {
    resource = new AsyncResource('TEST');
  });
  const seen: unknown[] = [];
  const probe = function (this: unknown, ...args: unknown[]): unknown {
    seen.push({ store: als.getStore(), inScope: executionAsyncId() === resource.asyncId(), self: this, args });
    return (fn as (...a: unknown[]) => unknown).apply(this, args);
  };
  Object.defineProperty(probe, 'length', { value: fn.length });
  const bound = (bind as unknown as (this: AsyncResource, f: unknown, t: unknown) => unknown).call(resource, probe, thisArg) as ((...a: unknown[]) => unknown) & { asyncResource?: unknown };
  const receiver = { receiver: true };
  const results = als.run('at call', () => [bound(1, 2), bound.call(receiver, 'x')]);
  const desc = Object.getOwnPropertyDescriptor(bound, 'asyncResource')!;
  const lengthDesc = Object.getOwnPropertyDescriptor(bound, 'length')!;
  const other = new AsyncResource('OTHER');
  const before = bound.asyncResource === resource;
  bound.asyncResource = other;
  const afterSet = bound.asyncResource === other;
  return {
    results,
    seen: seen.map((s) => ({ ...(s as object), self: (s as { self: unknown }).self === receiver ? 'receiver' : (s as { self: unknown }).self === thisArg && thisArg !== undefined ? 'thisArg' : typeof (s as { self: unknown }).self })),
    length: bound.length,
    name: bound.name,
    lengthDesc: { enumerable: lengthDesc.enumerable, configurable: lengthDesc.configurable, writable: lengthDesc.writable },
    keys: Object.keys(bound),
    accessor: { enumerable: desc.enumerable, configurable: desc.configurable, get: typeof desc.get, set: typeof desc.set },
    before,
    afterSet,
  };
}

describe('lean AsyncResource.prototype.bind', () => {
  after(() => restoreNodeAsyncResourceBind());

  it('emits DEP0172 once, on the first use of asyncResource, as Node does', async () => {
    const warnings: Error[] = [];
    const onWarning = (w: Error): void => void warnings.push(w);
    process.on('warning', onWarning);
    try {
      const r = new AsyncResource('TEST');
      const bound = leanBind.call(r, () => 1) as unknown as { asyncResource: unknown };
      await new Promise((res) => setImmediate(res));
      assert.equal(warnings.length, 0, 'binding alone warns of nothing');
      assert.equal(bound.asyncResource, r);
      assert.equal(bound.asyncResource, r);
      await new Promise((res) => setImmediate(res));
      assert.equal(warnings.length, 1);
      assert.equal(warnings[0]!.name, 'DeprecationWarning');
      assert.equal((warnings[0] as Error & { code?: string }).code, 'DEP0172');
      assert.equal(warnings[0]!.message, 'The asyncResource property on bound functions is deprecated');
    } finally {
      process.off('warning', onWarning);
    }
  });

  const fns: [string, (...a: never[]) => unknown][] = [
    ['no parameters', () => 'r0'],
    ['two parameters', (a: never, b: never) => [a, b]],
    ['three parameters, a bound function', function (this: unknown, a: never, b: never, c: never) {
      return [a, b, c];
    }.bind(null)],
  ];
  for (const [what, fn] of fns) {
    for (const thisArg of [undefined, { bound: true }]) {
      it(`behaves as Node's own: ${what}, ${thisArg === undefined ? 'no thisArg' : 'a thisArg'}`, () => {
        const [node, lean] = IMPLS.map(([, bind]) => observe(bind, fn, thisArg));
        assert.deepEqual(lean, node);
        // What the comparison stands on: the context is the creation's, the call runs in the resource's scope.
        assert.deepEqual((node!.seen as { store: string; inScope: boolean }[]).map((s) => [s.store, s.inScope]), [
          ['at creation', true],
          ['at creation', true],
        ]);
      });
    }
  }

  it('refuses what Node refuses, with Node\'s error', () => {
    const r = new AsyncResource('TEST');
    for (const bad of [undefined, 1, 'f', {}]) {
      const codes = IMPLS.map(([, bind]) => {
        try {
          bind.call(r, bad as never);
          return 'no error';
        } catch (e) {
          return (e as { code?: string }).code;
        }
      });
      assert.deepEqual(codes, ['ERR_INVALID_ARG_TYPE', 'ERR_INVALID_ARG_TYPE']);
    }
  });

  it('installed, serves AsyncResource.bind and node:http2 requests', async () => {
    installLeanAsyncResourceBind();
    assert.equal(AsyncResource.prototype.bind, leanBind);
    const staticBound = AsyncResource.bind((x: number) => x * 2) as unknown as ((x: number) => number) & { asyncResource: unknown };
    assert.equal(staticBound(21), 42);
    assert.ok(staticBound.asyncResource instanceof AsyncResource);

    const server = http2.createServer();
    server.on('stream', (stream) => {
      stream.respond({ ':status': 200 });
      stream.end('ok');
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const client = http2.connect(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);
    try {
      for (let i = 0; i < 3; i++) {
        const req = client.request({ ':path': `/${i}` });
        const chunks: Buffer[] = [];
        const status = await new Promise<number>((resolve, reject) => {
          let st = 0;
          req.on('response', (h) => (st = Number(h[':status'])));
          req.on('data', (c: Buffer) => chunks.push(c));
          req.on('end', () => resolve(st));
          req.on('error', reject);
        });
        assert.equal(status, 200);
        assert.equal(Buffer.concat(chunks).toString(), 'ok');
      }
    } finally {
      client.close();
      await new Promise<void>((r) => server.close(() => r()));
    }
  });
});
