// Requests shaped to hurt the WAF as a whole (the regexes alone: regex.test.ts).
//
// What it keeps from one request to the next. The engine remembers the
// values it has seen (and what it derived from them) across requests, so a
// value must not keep alive the larger string it was cut from: a new 25-byte
// JSON value in each of 2,000 bodies of 120 KiB held 240 MB before values
// were cut as strings of their own (request-vars.ts, Text).
//
// What a long head costs. A request line at the default head limit (16 KiB)
// cost 100-140 ms of CPU when every @rx asked RE2 for its groups, which it
// finds with its NFA on long input (CRS 920100 alone: 110 ms); only rules
// that read the groups ask for them now.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import v8 from 'node:v8';
import vm from 'node:vm';
import { loadCrs, type RuleSet } from '../../../../src/filters/waf/ruleset.js';
import { addBodyVars, buildHeadVars } from '../../../../src/filters/waf/request-vars.js';

v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;

const PAD = 'a'.repeat(48 * 1024);
const REQUESTS = 100;

interface Shape {
  target: (i: number) => string;
  headers: (i: number) => [string, string][];
  body?: (i: number) => Buffer;
}

/** A value no earlier request had, long enough that a plain slice of it would be a view. */
const unique = (i: number): string => `unique-value-${i}-${'x'.repeat(12)}`;

function run(rules: RuleSet, shape: Shape, i: number): boolean {
  const body = shape.body?.(i);
  const headers: [string, string][] = [['Host', 'shop.example'], ...shape.headers(i)];
  if (body) headers.push(['Content-Length', String(body.length)]);
  const head = buildHeadVars({ method: body ? 'POST' : 'GET', target: shape.target(i), httpVersion: 'HTTP/1.1', headers, remoteAddr: '192.0.2.7', uniqueId: `r${i}` });
  const tx = rules.newTransaction(head);
  tx.runPhase(1);
  tx.runPhase(2, body ? addBodyVars(head, body, { truncated: false, processor: tx.requestBodyProcessor as 'JSON' | undefined }) : head);
  return tx.verdict().blocked;
}

/** Heap bytes still held per request after REQUESTS requests of `shape`, each with a new value. */
function heldPerRequest(shape: Shape): number {
  // A rule set of its own: what the engine keeps across requests is kept per rule set.
  const rules = loadCrs({ blockingParanoiaLevel: 1, detectionParanoiaLevel: 1 });
  for (let i = 0; i < 20; i++) run(rules, shape, -1 - i);
  gc();
  gc();
  const before = process.memoryUsage().heapUsed;
  for (let i = 0; i < REQUESTS; i++) assert.equal(run(rules, shape, i), false, 'a benign request was blocked');
  gc();
  gc();
  const held = (process.memoryUsage().heapUsed - before) / REQUESTS;
  assert.ok(rules.version);
  return held;
}

const boundary = 'XyZ123';
const shapes: Record<string, Shape> = {
  'a JSON body': {
    target: () => '/api/orders',
    headers: () => [['Content-Type', 'application/json']],
    body: (i) => Buffer.from(JSON.stringify({ pad: PAD, note: unique(i) })),
  },
  'a urlencoded body': {
    target: () => '/api/orders',
    headers: () => [['Content-Type', 'application/x-www-form-urlencoded']],
    body: (i) => Buffer.from(`pad=${PAD}&note=${unique(i)}`),
  },
  'a multipart body': {
    target: () => '/upload',
    headers: () => [['Content-Type', `multipart/form-data; boundary=${boundary}`]],
    body: (i) =>
      Buffer.from(
        `--${boundary}\r\nContent-Disposition: form-data; name="pad"\r\n\r\n${PAD}\r\n` +
          `--${boundary}\r\nContent-Disposition: form-data; name="note"\r\n\r\n${unique(i)}\r\n--${boundary}--\r\n`,
      ),
  },
  'an XML body': {
    target: () => '/api/orders',
    headers: () => [['Content-Type', 'application/xml']],
    body: (i) => Buffer.from(`<order><pad>${PAD}</pad><note kind="${unique(i)}">${unique(i)}</note></order>`),
  },
  'a long query': {
    target: (i) => `/search?pad=${PAD}&q=${unique(i)}`,
    headers: () => [],
  },
  'a long Cookie header': {
    target: () => '/',
    headers: (i) => [['Cookie', `pad=${PAD}; session=${unique(i)}`]],
  },
};

for (const [name, shape] of Object.entries(shapes)) {
  test(`a value from ${name} does not keep the rest of it alive across requests`, () => {
    const held = heldPerRequest(shape);
    // A view would keep the 48 KiB around it per request; the value and what
    // the engine learnt about it are a few KiB.
    assert.ok(held < 16 * 1024, `${(held / 1024).toFixed(1)} KiB held per request`);
  });
}

test('JSON keys that never repeat do not make the remembered leaf names grow without bound', () => {
  // Leaf names are kept across bodies (request-vars.ts, JName) so that an
  // API's repeating names are not rebuilt; a client sending new keys in
  // every body gets a tree that starts again when full.
  const parse = (b: number): void => {
    const obj: Record<string, number> = {};
    for (let k = 0; k < 1000; k++) obj[`${unique(b)}-${k}`] = k;
    const body = Buffer.from(JSON.stringify(obj));
    const head = buildHeadVars({ method: 'POST', target: '/api', httpVersion: 'HTTP/1.1', headers: [['Host', 'shop.example'], ['Content-Type', 'application/json']], remoteAddr: '192.0.2.7', uniqueId: `j${b}` });
    addBodyVars(head, body, { truncated: false, processor: 'JSON' });
  };
  for (let b = 0; b < 20; b++) parse(-1 - b);
  gc();
  gc();
  const before = process.memoryUsage().heapUsed;
  for (let b = 0; b < 100; b++) parse(b);
  gc();
  gc();
  const held = process.memoryUsage().heapUsed - before;
  // 100,000 new names of about 40 chars: kept without a bound, about 20 MB.
  assert.ok(held < 8 * 1024 * 1024, `${(held / 1024 / 1024).toFixed(1)} MB held after 100,000 new keys`);
});

test('JSON keys and values that never repeat, through the rules, do not make what leaves keep grow without bound', () => {
  // A leaf keeps its last value's entry, and the entry what the engine
  // learnt about the value (request-vars.ts JName.entry, engine.ts
  // entrySlots): bounded by the tree's bound on leaves.
  const rules = loadCrs({ blockingParanoiaLevel: 1, detectionParanoiaLevel: 1 });
  const parse = (b: number): void => {
    const obj: Record<string, string> = {};
    for (let k = 0; k < 1000; k++) obj[`${unique(b)}-${k}`] = `some value ${b} ${k} blue`;
    const body = Buffer.from(JSON.stringify(obj));
    const head = buildHeadVars({ method: 'POST', target: '/api', httpVersion: 'HTTP/1.1', headers: [['Host', 'shop.example'], ['Content-Type', 'application/json']], remoteAddr: '192.0.2.7', uniqueId: `v${b}` });
    const tx = rules.newTransaction(head);
    tx.runPhase(1);
    tx.runPhase(2, addBodyVars(head, body, { truncated: false, processor: 'JSON' }));
  };
  parse(-1);
  gc();
  gc();
  const before = process.memoryUsage().heapUsed;
  // The most held at any point of two rounds of the name tree (16,384 names: a new tree every 17th body).
  let held = 0;
  for (let b = 0; b < 34; b++) {
    parse(b);
    if (b % 2 === 1) {
      gc();
      gc();
      held = Math.max(held, process.memoryUsage().heapUsed - before);
    }
  }
  // Each leaf keeping an entry and what the engine learnt of it, up to the tree's 16,384: 82 MB at the most; 12 MB with the bound.
  assert.ok(held < 24 * 1024 * 1024, `${(held / 1024 / 1024).toFixed(1)} MB held at the most, 1,000 new keys and values a body`);
});

test('a request line, a header and a cookie at the head limit (16 KiB) cost milliseconds, not a tenth of a second', () => {
  const rules = loadCrs({ blockingParanoiaLevel: 1, detectionParanoiaLevel: 1 });
  const long = (unit: string) => unit.repeat(Math.ceil(16_000 / unit.length)).slice(0, 16_000);
  const requests: Shape[] = ['a', '<', ';', "'", '%25', 'x1'].flatMap((unit) => [
    { target: (i: number) => `/search?q=${long(unit)}&n=${i}`, headers: () => [] },
    { target: () => '/', headers: (i: number) => [['User-Agent', long(unit) + i]] as [string, string][] },
    { target: () => '/', headers: (i: number) => [['Cookie', `s=${long(unit)}${i}`]] as [string, string][] },
  ]);
  // RE2 compiles its programs at first use (up to 0.5 s each): not timed.
  requests.forEach((shape) => run(rules, shape, -1));
  const times = requests.map((shape) => {
    const t0 = performance.now();
    for (let i = 0; i < 3; i++) run(rules, shape, i);
    return (performance.now() - t0) / 3;
  });
  const worst = Math.max(...times);
  // 100-140 ms each before; 5-12 ms here on a 2-core machine.
  assert.ok(worst < 50, `the slowest took ${worst.toFixed(1)} ms per request`);
});
