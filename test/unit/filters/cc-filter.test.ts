// The cc filter as a config compiles it: identities (ip, header, cookie,
// query, consumer, combined), "*" and value lists, per-value overrides,
// 429 + Retry-After + flag CC, detect mode, the phase split (consumer rules
// after auth), and config errors named by their key path.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import pino from 'pino';
import { Exchange } from '../../../src/exchange/exchange.js';
import { compileRateKey } from '../../../src/filters/cc/key.js';
import { compileFilters } from '../../../src/filters/index.js';
import { PHASES, type FilterContext, type FilterInstance, type Rejection } from '../../../src/filters/types.js';
import { Metrics } from '../../../src/observability/metrics.js';
import { MemoryStore } from '../../../src/store/memory.js';

const store = new MemoryStore();

function ctx(metrics = new Metrics({ processMetrics: false })): Omit<FilterContext, 'previous'> {
  return { store, log: pino({ level: 'silent' }), metrics };
}

function compile(entry: Record<string, unknown>, metrics?: Metrics, previous = new Map<string, FilterInstance>()) {
  return compileFilters([{ type: 'cc', ...entry }], ctx(metrics), 'filters', previous);
}

function chain(entry: Record<string, unknown>, metrics?: Metrics): FilterInstance[] {
  return compile(entry, metrics).chain;
}

function compileError(entry: Record<string, unknown>): string {
  try {
    chain(entry);
  } catch (e) {
    return (e as Error).message;
  }
  return '(compiled)';
}

interface Req {
  ip?: string;
  url?: string;
  headers?: Record<string, string>;
  consumer?: string;
}

function exchange(r: Req = {}): Exchange {
  const ex = new Exchange({ url: r.url ?? '/', method: 'GET', headers: r.headers ?? {} } as never, {} as never, 'rid', r.ip ?? '192.0.2.1', 'h', 'http');
  ex.consumer = r.consumer;
  return ex;
}

/** Runs the chain as the pipeline does; 'pass' or the rejection. */
async function run(filters: FilterInstance[], r: Req = {}, ex = exchange(r)): Promise<'pass' | Rejection> {
  for (const f of filters) {
    const out = await f.onRequest?.(ex);
    if (out) return out;
  }
  return 'pass';
}

async function passes(filters: FilterInstance[], n: number, r: Req = {}): Promise<number> {
  let ok = 0;
  for (let i = 0; i < n; i++) if ((await run(filters, r)) === 'pass') ok++;
  return ok;
}

describe('cc filter', () => {
  it('refuses past the limit with 429, flag CC and Retry-After', async () => {
    const f = chain({ rules: [{ key: 'ip', qps: 3 }] });
    assert.equal(await passes(f, 3), 3);
    const r = await run(f);
    assert.ok(r !== 'pass');
    assert.equal(r.status, 429);
    assert.equal(r.flag, 'CC');
    assert.ok(Number(r.headers?.['retry-after']) >= 1);
    assert.equal(r.headers?.['x-ratelimit-limit'], undefined, 'rate headers are off by default');
    // Another client is not affected.
    assert.equal(await passes(f, 3, { ip: '192.0.2.2' }), 3);
  });

  it('blockSeconds: the breaking request starts a block reported in Retry-After', async () => {
    const f = chain({ rules: [{ key: 'ip', qps: 2, blockSeconds: 300 }] });
    assert.equal(await passes(f, 2), 2);
    const r = await run(f);
    assert.ok(r !== 'pass');
    assert.equal(r.headers?.['retry-after'], '300');
    assert.match(r.message ?? '', /blocked/);
  });

  it('X-RateLimit headers: on refusals and on answers that pass', async () => {
    const f = chain({ headers: true, rules: [{ key: 'ip', qpm: 5 }] });
    const ex = exchange();
    assert.equal(await run(f, {}, ex), 'pass');
    const set = ex.responseHeaderOps.map((o) => o.set).find(Boolean)!;
    assert.equal(set['x-ratelimit-limit'], '5');
    assert.equal(set['x-ratelimit-remaining'], '4');
    assert.ok(Number(set['x-ratelimit-reset']) > 0 && Number(set['x-ratelimit-reset']) <= 66);
    await passes(f, 4);
    const r = await run(f);
    assert.ok(r !== 'pass');
    assert.equal(r.headers?.['x-ratelimit-remaining'], '0');
  });

  it('"*" under a header limits each distinct value (not: no value at all)', async () => {
    const f = chain({ rules: [{ key: { header: 'x-api-key' }, values: ['*'], qpm: 2 }] });
    assert.equal(await passes(f, 5, { headers: { 'x-api-key': 'k1' } }), 2);
    assert.equal(await passes(f, 5, { headers: { 'x-api-key': 'k2' } }), 2);
    // A request without the header is not this rule's business.
    assert.equal(await passes(f, 5), 5);
  });

  it('cookie and query keys', async () => {
    const f = chain({ rules: [{ key: { cookie: 'sid' }, qpm: 1 }, { key: { query: 'token' }, qpm: 1 }] });
    assert.equal(await passes(f, 3, { headers: { cookie: 'a=1; sid=s1' } }), 1);
    assert.equal(await passes(f, 3, { url: '/x?token=t1' }), 1);
    assert.equal(await passes(f, 3, { url: '/x?token=t2' }), 1);
  });

  it('values: an exact list and a regex select what the rule covers', async () => {
    const f = chain({ rules: [{ key: { header: 'x-user' }, values: ['alice', { regex: 'bot-[0-9]+' }], qpm: 1 }] });
    assert.equal(await passes(f, 3, { headers: { 'x-user': 'alice' } }), 1);
    assert.equal(await passes(f, 3, { headers: { 'x-user': 'bot-17' } }), 1);
    assert.equal(await passes(f, 3, { headers: { 'x-user': 'bob' } }), 3);
    assert.equal(await passes(f, 3, { headers: { 'x-user': 'bot-17x' } }), 3, 'the regex matches the whole value');
  });

  it('overrides: a listed value gets its own limits instead of the rule\'s', async () => {
    const f = chain({ rules: [{ key: { header: 'x-api-key' }, qpm: 2, overrides: [{ values: ['vip'], qpm: 10 }, { values: [{ prefix: 'trial-' }], qpm: 1 }] }] });
    assert.equal(await passes(f, 20, { headers: { 'x-api-key': 'vip' } }), 10);
    assert.equal(await passes(f, 20, { headers: { 'x-api-key': 'trial-9' } }), 1);
    assert.equal(await passes(f, 20, { headers: { 'x-api-key': 'plain' } }), 2);
  });

  it('a combined key counts each combination; a request missing a part is not counted', async () => {
    const f = chain({ rules: [{ key: ['ip', { header: 'x-app' }], qpm: 1 }] });
    assert.equal(await passes(f, 3, { ip: '198.51.100.1', headers: { 'x-app': 'a' } }), 1);
    assert.equal(await passes(f, 3, { ip: '198.51.100.1', headers: { 'x-app': 'b' } }), 1);
    assert.equal(await passes(f, 3, { ip: '198.51.100.2', headers: { 'x-app': 'a' } }), 1);
    assert.equal(await passes(f, 3, { ip: '198.51.100.1' }), 3);
  });

  it('a combined key does not let one part bleed into the next (a|b + c is not a + b|c)', () => {
    const k = compileRateKey([{ header: 'x-a' }, { header: 'x-b' }]);
    assert.notEqual(k(exchange({ headers: { 'x-a': 'p|', 'x-b': 'q' } })), k(exchange({ headers: { 'x-a': 'p', 'x-b': '|q' } })));
  });

  it('a hostile long value is cut: the counter key stays small', () => {
    const k = compileRateKey({ header: 'x-a' });
    assert.equal(k(exchange({ headers: { 'x-a': 'v'.repeat(100_000) } }))!.length, 256);
  });

  it('detect mode: passes, counts the would-be refusals in meshgate_cc_rejections_total', async () => {
    const metrics = new Metrics({ processMetrics: false });
    const f = chain({ mode: 'detect', rules: [{ name: 'per-ip', key: 'ip', qps: 2, blockSeconds: 60 }] }, metrics);
    assert.equal(await passes(f, 6), 6);
    const values = (await metrics.ccRejections.get()).values;
    const v = values.find((x) => x.labels.rule === 'per-ip' && x.labels.mode === 'detect');
    assert.equal(v?.value, 4);
  });

  it('a rule in detect mode beside one in block mode: only the block rule refuses', async () => {
    const f = chain({ rules: [{ key: 'ip', qps: 1, mode: 'detect' }, { key: 'ip', qps: 3 }] });
    assert.equal(await passes(f, 10), 3);
  });

  it('IP rules run before auth, consumer rules after it', async () => {
    const f = chain({ rules: [{ key: 'ip', qps: 100 }, { key: 'consumer', qpm: 2 }] });
    assert.deepEqual(
      f.map((x) => x.phase),
      ['protect', 'traffic'],
    );
    assert.ok(PHASES.indexOf('protect') < PHASES.indexOf('auth') && PHASES.indexOf('auth') < PHASES.indexOf('traffic'));
    // As the pipeline runs them: the auth phase names the consumer between the two.
    const runWithAuth = async (consumer: string | undefined): Promise<'pass' | Rejection> => {
      const ex = exchange();
      const protect = await f[0]!.onRequest!(ex);
      if (protect) return protect;
      ex.consumer = consumer; // what an auth filter does
      return (await f[1]!.onRequest!(ex)) ?? 'pass';
    };
    const got = [];
    for (let i = 0; i < 4; i++) got.push((await runWithAuth('mobile')) === 'pass');
    assert.deepEqual(got, [true, true, false, false]);
    assert.equal(await runWithAuth('partner'), 'pass');
    assert.equal(await runWithAuth(undefined), 'pass', 'an anonymous request is not counted by a consumer rule');
  });

  it('an entry with consumer rules only compiles to one instance, in the traffic phase', () => {
    assert.deepEqual(
      chain({ rules: [{ key: 'consumer', qps: 1 }] }).map((x) => x.phase),
      ['traffic'],
    );
  });

  it('a reload with the same rule keeps the counts (and a changed rule starts afresh)', async () => {
    const first = compile({ rules: [{ key: 'ip', qpm: 2 }] });
    assert.equal(await passes(first.chain, 2), 2);
    const again = compile({ rules: [{ key: 'ip', qpm: 2 }] }, undefined, first.byKey);
    assert.equal(await passes(again.chain, 1), 0);
    const changed = compile({ rules: [{ key: 'ip', qpm: 3 }] }, undefined, again.byKey);
    assert.equal(await passes(changed.chain, 5), 3);
  });

  it('refuses bad config naming the key', () => {
    assert.match(compileError({ rules: [{ key: 'ip' }] }), /^filters\[0\]\.rules\[0\]: needs at least one of qps, qpm, qph, qpd/);
    assert.match(compileError({ rules: [{ key: 'ip', qps: 0 }] }), /^filters\[0\]\.rules\[0\]\.qps:/);
    assert.match(compileError({ rules: [{ key: 'ip', qps: 1.5 }] }), /^filters\[0\]\.rules\[0\]\.qps:/);
    assert.match(compileError({ rules: [{ key: 'address', qps: 1 }] }), /^filters\[0\]\.rules\[0\]\.key:/);
    assert.match(compileError({ rules: [{ key: { header: '' }, qps: 1 }] }), /^filters\[0\]\.rules\[0\]\.key/);
    assert.match(compileError({ rules: [{ key: 'ip', qps: 1, blockSecond: 5 }] }), /^filters\[0\]\.rules\[0\]: .*blockSecond/);
    assert.match(compileError({ rules: [{ key: 'ip', qps: 1, overrides: [{ values: ['x'] }] }] }), /^filters\[0\]\.rules\[0\]\.overrides\[0\]: needs at least one/);
    assert.match(compileError({ rules: [{ key: 'ip', qps: 1, shared: true }] }), /^filters\[0\]: rules\[0\]\.shared: needs store\.type: redis/);
    assert.match(compileError({ rules: [{ key: ['ip', 'consumer'], values: ['x'], qps: 1 }] }), /rules\[0\]\.values: a combined key/);
    assert.match(compileError({ rules: [] }), /^filters\[0\]\.rules:/);
  });

  it('the admin view lists the rules and their counts', async () => {
    const f = chain({ rules: [{ name: 'ips', key: 'ip', qps: 1 }] });
    await passes(f, 3);
    const d = f[0]!.describe!() as { rules: Array<{ name: string; refused: number; limits: unknown }> };
    assert.equal(d.rules[0]!.name, 'ips');
    assert.equal(d.rules[0]!.refused, 2);
    assert.deepEqual(d.rules[0]!.limits, { qps: 1 });
  });
});
