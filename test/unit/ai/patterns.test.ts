// Model patterns (models: and modelMapping:): exact, then prefixes longest
// first, then regexes in config order, then "*"; "" keeps the name.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { compileModelMapping, compilePatterns } from '../../../src/upstreams/ai/patterns.js';

describe('model patterns', () => {
  it('exact beats prefix beats regex beats catch-all, whatever the key order', () => {
    const t = compilePatterns({ '*': 'any', '~^gpt-4': 'regex', 'gpt-*': 'short', 'gpt-4o*': 'long', 'gpt-4o-mini': 'exact' }, 'models');
    assert.equal(t.lookup('gpt-4o-mini'), 'exact');
    assert.equal(t.lookup('gpt-4o-2024'), 'long', 'the longest prefix wins');
    assert.equal(t.lookup('gpt-3.5'), 'short');
    assert.equal(t.lookup('claude'), 'any');
    const r = compilePatterns({ '~^gpt-4': 'regex', '~gpt': 'second', '*': 'any' }, 'models');
    assert.equal(r.lookup('gpt-4x'), 'regex', 'regexes in config order');
    assert.equal(r.lookup('my-gpt'), 'second');
  });

  it('no match without a catch-all is undefined; exact names are listed, wildcards not', () => {
    const t = compilePatterns({ 'a*': 'x', b: 'y', '~c': 'z' }, 'models');
    assert.equal(t.lookup('d'), undefined);
    assert.deepEqual(t.exactNames, ['b']);
  });

  it('a mapping to "" or no match keeps the requested name', () => {
    const m = compileModelMapping({ 'gpt-4o': 'qwen-max', 'keep-*': '' }, 'modelMapping');
    assert.equal(m('gpt-4o'), 'qwen-max');
    assert.equal(m('keep-this'), 'keep-this');
    assert.equal(m('other'), 'other');
  });

  it('refuses bad patterns naming the key', () => {
    assert.throws(() => compilePatterns({ '~(': 'x' }, 'providers[0].modelMapping'), /providers\[0\]\.modelMapping\["~\("\]: not a regular expression/);
    assert.throws(() => compilePatterns({ 'a*b': 'x' }, 'models'), /models\["a\*b"\]: "\*" may only end a pattern/);
  });
});
