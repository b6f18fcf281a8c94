// Exclusions such as `ARGS:/^json\./` are tested against every key of a
// collection on every request; one that is `^` and literal chars is a
// case-insensitive prefix test (ruleset.ts literalPrefix), held here to what
// the regex itself answers.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { compileRx } from '../../../../src/filters/waf/regex.js';
import { startsWithAsciiCi } from '../../../../src/filters/waf/engine.js';
import { literalPrefix } from '../../../../src/filters/waf/ruleset.js';

const NAMES = ['json.a', 'JSON.a', 'Json.', 'json', 'jsonx', 'xjson.a', '', 'json\xe9.a', '\xc9json.a', 'a_b-c', 'A_B-Cd', 'a_b', 'x:y1', 'X:Y', 'session_id', 'SESSION_ID2', 'sessionid'];

test('a key regex of ^ and literal chars answers as the regex does', () => {
  for (const pattern of ['^json\\.', '^JSON\\.', '^a_b-c', '^x:y', '^session_id', '^a\\_b\\-c', '^x\\:y']) {
    const prefix = literalPrefix(pattern);
    assert.notEqual(prefix, undefined, pattern);
    const rx = compileRx(`(?i)${pattern}`);
    for (const name of NAMES) assert.equal(startsWithAsciiCi(name, prefix!), rx.test(name), `${pattern} on ${JSON.stringify(name)}`);
  }
});

test('a key regex with anything but literal chars after ^ stays a regex', () => {
  for (const pattern of ['^json.', 'json\\.', '^json\\.*', '^(?:a|b)', '^json$', '^[a-z]', '^a+', '^\\d', '^json\\.|^xml']) {
    assert.equal(literalPrefix(pattern), undefined, pattern);
  }
});
