// A lean AsyncResource.prototype.bind for Node 20.
//
// node:http2's ClientHttp2Session.request() binds every request's start to a
// new AsyncResource (`reqAsync.bind(...)`). Node 20's bind gives the bound
// function a deprecated `asyncResource` accessor (DEP0172) made of two
// `util.deprecate()` wrappers, and each wrapper sets a new function's
// prototype: about 12 µs per call on this project's machine, 9 % of the
// gateway's CPU per proxied h2c request (BENCHMARKS.md, HTTP/2). Node knows
// (nodejs/node#58218; the property's removal: nodejs/node#58618).
//
// installLeanAsyncResourceBind() replaces the method with one that behaves
// the same for every caller: the bound function runs `fn` in the resource's
// async scope with the same `this` and arguments, has fn's `length`, and has
// an own, enumerable, configurable `asyncResource` accessor that returns (and
// sets) the resource and emits DEP0172 once, as Node's does. The accessor's
// functions are shared by all bound functions (the resource is kept under a
// symbol) instead of being made per call. Invalid arguments are handed to
// Node's own method, so its errors are unchanged.
// test/unit/upstreams/async-resource-bind.test.ts holds it to Node's own
// method, side by side.
import { AsyncResource } from 'node:async_hooks';

const RESOURCE = Symbol('meshgate.asyncResource');
const MESSAGE = 'The asyncResource property on bound functions is deprecated';

let warned = false;
function warnOnce(): void {
  if (warned) return;
  warned = true;
  // process.emitWarning honours --no-deprecation, --throw-deprecation and --trace-deprecation, as util.deprecate does.
  process.emitWarning(MESSAGE, 'DeprecationWarning', 'DEP0172');
}

type Bound = ((...args: unknown[]) => unknown) & { [RESOURCE]?: AsyncResource };

const ACCESSOR: PropertyDescriptor = {
  configurable: true,
  enumerable: true,
  get(this: Bound) {
    warnOnce();
    return this[RESOURCE];
  },
  set(this: Bound, v: AsyncResource) {
    warnOnce();
    this[RESOURCE] = v;
  },
};

const nodeBind = AsyncResource.prototype.bind;

type Fn = (...args: unknown[]) => unknown;

function leanBind(this: AsyncResource, fn: unknown, thisArg?: unknown): unknown {
  if (typeof fn !== 'function') return (nodeBind as unknown as Fn).call(this, fn, thisArg);
  const f = fn as Fn;
  let bound: Bound;
  if (thisArg === undefined) {
    const resource = this;
    bound = function (this: unknown, ...args: unknown[]) {
      return resource.runInAsyncScope(f, this, ...args);
    };
  } else {
    bound = (this.runInAsyncScope as Fn).bind(this, f, thisArg) as Bound;
  }
  if (bound.length !== f.length) Object.defineProperty(bound, 'length', { configurable: true, enumerable: false, writable: false, value: f.length });
  Object.defineProperty(bound, 'asyncResource', ACCESSOR);
  bound[RESOURCE] = this;
  return bound;
}

/** Replaces AsyncResource.prototype.bind with the lean one (once; the CLI does it for every process it starts). */
export function installLeanAsyncResourceBind(): void {
  AsyncResource.prototype.bind = leanBind as unknown as typeof AsyncResource.prototype.bind;
}

/** Puts Node's own method back (tests). */
export function restoreNodeAsyncResourceBind(): void {
  AsyncResource.prototype.bind = nodeBind;
}

export { leanBind as _leanBindForTests, nodeBind as _nodeBindForTests };
