// A JSON leaf whose value repeats from one body to the next keeps its ARGS
// entry, and the engine leaves what it learnt about the value on the entry
// (types.ts VarEntry.memo). These tests hold that reuse to what a fresh
// evaluation decides: a changed value is judged anew, and what one rule set
// learnt is never read by another.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Transaction } from '../../../../src/filters/waf/engine.js';
import { compileRules, loadCrs, type RuleSet } from '../../../../src/filters/waf/ruleset.js';
import { addBodyVars, buildHeadVars } from '../../../../src/filters/waf/request-vars.js';
import type { RequestVars } from '../../../../src/filters/waf/types.js';

function jsonVars(body: string, id: number): RequestVars {
  const head = buildHeadVars({
    method: 'POST',
    target: '/api/orders',
    httpVersion: 'HTTP/1.1',
    headers: [['Host', 'shop.example'], ['Content-Type', 'application/json'], ['Content-Length', String(Buffer.byteLength(body))]],
    remoteAddr: '192.0.2.10',
    uniqueId: `m${id}`,
  });
  return addBodyVars(head, Buffer.from(body, 'latin1'), { truncated: false, processor: 'JSON' });
}

function blocked(rs: RuleSet, vars: RequestVars, prefilter: boolean): boolean {
  const tx = new Transaction(rs, vars, { prefilter });
  tx.runPhase(1);
  tx.runPhase(2, vars);
  return tx.verdict().blocked;
}

test('a JSON value that changes at the same path is judged anew, and judged as a fresh evaluation judges it', () => {
  const rs = loadCrs({ blockingParanoiaLevel: 1, detectionParanoiaLevel: 1 });
  const values = [
    'blue running shoes',
    "' or 1=1 --",
    'blue running shoes',
    '<script>alert(1)</script>',
    'blue running shoes',
    'blue running shoes',
    '; cat /etc/passwd',
    'Please leave the parcel at the front door.',
  ];
  const got: boolean[] = [];
  for (let round = 0; round < 3; round++) {
    values.forEach((q, i) => {
      const body = JSON.stringify({ order: { note: q, sku: 'SKU-1001', qty: 2 }, tags: ['gift', q] });
      const fast = blocked(rs, jsonVars(body, i), true);
      assert.equal(fast, blocked(rs, jsonVars(body, i), false), `${JSON.stringify(q)} (round ${round})`);
      got.push(fast);
    });
  }
  assert.deepEqual(got.slice(0, values.length), [false, true, false, true, false, false, true, false]);
  assert.deepEqual(got.slice(values.length), [...got.slice(0, values.length), ...got.slice(0, values.length)]);
});

test('what one rule set learnt about a value is not read by another rule set', () => {
  // Transformation ids are per rule set: both sets number their one
  // transformation 0. If B read A's memo on the shared entry, it would take
  // A's lower-cased value for its upper-cased one and miss the match.
  const a = compileRules([{ file: 'a.conf', text: 'SecRule ARGS "@rx ^abc$" "id:1,phase:2,deny,status:403,t:lowercase"\n' }]);
  const b = compileRules([{ file: 'b.conf', text: 'SecRule ARGS "@rx ^ABC$" "id:1,phase:2,deny,status:403,t:uppercase"\n' }]);
  const body = '{"k":"aBc"}';
  for (let round = 0; round < 4; round++) {
    assert.equal(blocked(a, jsonVars(body, round), true), true, `A, round ${round}`);
    assert.equal(blocked(b, jsonVars(body, round), true), true, `B, round ${round}`);
  }
});

test('a value or key read with escapes is never taken for the same chars sent raw', () => {
  // The kept value is compared with the raw chars of the next body: one that
  // came from escapes (a newline, a quote) must not make raw text that is not
  // JSON (a control char, a quote in the middle of a key) parse as it.
  const errorOf = (v: RequestVars): string => `${v.scalars.get('REQBODY_ERROR')} ${v.scalars.get('REQBODY_ERROR_MSG') ?? ''}`;
  for (let round = 0; round < 3; round++) {
    const ok = jsonVars('{"k":"x\\ny","a\\"b":1}', round);
    assert.equal(ok.scalars.get('REQBODY_ERROR'), '0');
    assert.deepEqual(ok.collections.get('ARGS_POST')!.map((e) => [e.name, e.value]), [['json.k', 'x\ny'], ['json.a"b', '1']]);
  }
  assert.match(errorOf(jsonVars('{"k":"x\ny","a\\"b":1}', 9)), /^1 .*control character/);
  assert.match(errorOf(jsonVars('{"k":"x\\ny","a"b":1}', 10)), /^1 /);
});

test('a repeated JSON body reuses its leaf entries, and a changed value gets a new one', () => {
  const one = jsonVars('{"a":"x","b":{"c":"y"}}', 1);
  const two = jsonVars('{"a":"x","b":{"c":"z"}}', 2);
  const args = (v: RequestVars) => v.collections.get('ARGS_POST')!;
  assert.equal(args(two)[0], args(one)[0], 'json.a: the same value, the same entry');
  assert.notEqual(args(two)[1], args(one)[1], 'json.b.c: a new value, a new entry');
  assert.deepEqual(args(two).map((e) => [e.name, e.value]), [['json.a', 'x'], ['json.b.c', 'z']]);
  // Keys in another order, and a key written with an escape, name the same leaves.
  const three = jsonVars('{"b":{"c":"z"},"\\u0061":"x"}', 3);
  assert.deepEqual(args(three).map((e) => [e.name, e.value]), [['json.b.c', 'z'], ['json.a', 'x']]);
  assert.equal(args(three)[0], args(two)[1]);
  assert.equal(args(three)[1], args(one)[0]);
});

test('a long value is known by a sample of it, and two that share the sample are not taken for each other', () => {
  // Strings over 256 chars (bodies) are found in the engine's cache by their
  // length, ends and three chunks of the middle (engine.ts sampleKey), then
  // compared whole. Two bodies alike in all of that, one with the attack
  // where no sample looks, must each get their own verdict.
  const rs = compileRules([{ file: 'long.conf', text: 'SecRule REQUEST_BODY "@rx evil" "id:1,phase:2,deny,status:403"\n' }]);
  const benign = 'x'.repeat(1000);
  const attack = `${benign.slice(0, 100)}evil${benign.slice(104)}`;
  assert.equal(attack.length, benign.length);
  const verdict = (body: string, i: number): boolean => {
    const head = buildHeadVars({ method: 'POST', target: '/up', httpVersion: 'HTTP/1.1', headers: [['Host', 'shop.example'], ['Content-Type', 'text/plain']], remoteAddr: '192.0.2.10', uniqueId: `l${i}` });
    return blocked(rs, addBodyVars(head, Buffer.from(body, 'latin1'), { truncated: false }), true);
  };
  for (let round = 0; round < 3; round++) {
    assert.equal(verdict(benign, round), false, `benign, round ${round}`);
    assert.equal(verdict(attack, round), true, `attack, round ${round}`);
  }
});

test('a long list of repeated values keeps its known set only while every value stays the same', () => {
  // Lists of 8 or more values remember the AND of what their values are
  // known not to match, by the values' identities (engine.ts
  // SlotCache.knownFor). A body like the last one but for one leaf, in turn
  // at each place, must be judged as a fresh evaluation judges it.
  const rs = loadCrs({ blockingParanoiaLevel: 1, detectionParanoiaLevel: 1 });
  const attacks = ["' or 1=1 --", '<script>alert(1)</script>', '; cat /etc/passwd'];
  const leaves = Array.from({ length: 12 }, (_, i) => `item ${i} in blue`);
  const bodyWith = (at: number, v: string): string => JSON.stringify({ items: leaves.map((x, i) => (i === at ? v : x)), note: 'leave it at the door' });
  let n = 0;
  for (let at = 0; at < leaves.length; at++) {
    const attack = attacks[at % attacks.length]!;
    for (const [body, want] of [[bodyWith(-1, ''), false], [bodyWith(-1, ''), false], [bodyWith(at, attack), true], [bodyWith(-1, ''), false]] as const) {
      const fast = blocked(rs, jsonVars(body, n++), true);
      assert.equal(fast, blocked(rs, jsonVars(body, n++), false), `leaf ${at}: ${body.slice(0, 60)}`);
      assert.equal(fast, want, `leaf ${at}, attack ${JSON.stringify(attack)}`);
    }
  }
});

test('rules that leave out different keys of one collection each read their own values', () => {
  // Targets that select the same values share what is known about them (engine.ts
  // knownTargetKey); two that leave out different headers must not.
  const rs = compileRules([
    {
      file: 'ex.conf',
      text: [
        'SecRule REQUEST_HEADERS|!REQUEST_HEADERS:Cookie "@contains evil" "id:1,phase:1,deny,status:403"',
        'SecRule REQUEST_HEADERS|!REQUEST_HEADERS:Referer "@contains evil" "id:2,phase:1,deny,status:403"',
        'SecRule REQUEST_HEADERS|!REQUEST_HEADERS:Cookie "@contains worse" "id:3,phase:1,deny,status:403"',
        '',
      ].join('\n'),
    },
  ]);
  const matched = (headers: [string, string][], i: number): number[] => {
    const vars = buildHeadVars({ method: 'GET', target: '/', httpVersion: 'HTTP/1.1', headers: [['Host', 'shop.example'], ...headers], remoteAddr: '192.0.2.10', uniqueId: `x${i}` });
    const tx = new Transaction(rs, vars, { prefilter: true });
    tx.runPhase(1);
    return tx.verdict().matches.map((m) => m.id);
  };
  for (let round = 0; round < 3; round++) {
    assert.deepEqual(matched([['Referer', 'fine'], ['Cookie', 'fine']], round), [], `round ${round}`);
    assert.deepEqual(matched([['Referer', 'fine'], ['Cookie', 'evil']], round), [2], `cookie, round ${round}`);
    assert.deepEqual(matched([['Referer', 'evil'], ['Cookie', 'fine']], round), [1], `referer, round ${round}`);
    assert.deepEqual(matched([['Referer', 'fine'], ['Cookie', 'worse']], round), [], `worse in the cookie, round ${round}`);
    assert.deepEqual(matched([['Referer', 'worse'], ['Cookie', 'fine']], round), [3], `worse in the referer, round ${round}`);
  }
});

test('a rule that leaves out one argument reads the values its names select, when two bodies have the same values under other names', () => {
  // What a selection of a list is known not to match is remembered by the
  // list's entries (engine.ts SlotCache.knownFor): names select, so two
  // bodies with the same values in the same order under different names
  // must not share it.
  const rs = compileRules([{ file: 'sel.conf', text: 'SecRule ARGS|!ARGS:json.safe "@contains evil" "id:1,phase:2,deny,status:403"\n' }]);
  const rest = Object.fromEntries(Array.from({ length: 9 }, (_, i) => [`k${i + 2}`, `value ${i}`]));
  const a = JSON.stringify({ safe: 'evil', k1: 'fine', ...rest });
  const b = JSON.stringify({ k0: 'evil', safe: 'fine', ...rest });
  let n = 0;
  for (let round = 0; round < 4; round++) {
    assert.equal(blocked(rs, jsonVars(a, n++), true), false, `evil under the name left out, round ${round}`);
    assert.equal(blocked(rs, jsonVars(a, n++), true), false, `again, round ${round}`);
    assert.equal(blocked(rs, jsonVars(b, n++), true), true, `evil under another name, round ${round}`);
  }
});
