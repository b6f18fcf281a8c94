import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import {
  parseActions,
  parseOperator,
  parseSecLang,
  parseVariables,
  type SecRuleNode,
} from '../../../../src/filters/waf/seclang/parse.js';

const CRS_RULES = '/work/shared/crs/rules';
const requestFiles = readdirSync(CRS_RULES)
  .filter((f) => /^REQUEST-\d+-.*\.conf$/.test(f))
  .sort();

function rules(text: string): SecRuleNode[] {
  const r = parseSecLang(text, 'test.conf');
  assert.deepEqual(r.errors, []);
  return r.nodes.filter((n): n is SecRuleNode => n.type === 'rule');
}

test('every CRS request rule file parses without errors or unknown directives', () => {
  assert.equal(requestFiles.length, 18);
  let statements = 0;
  let chained = 0;
  let markers = 0;
  const perFile: Record<string, number> = {};
  for (const f of requestFiles) {
    const r = parseSecLang(readFileSync(join(CRS_RULES, f), 'latin1'), f);
    assert.deepEqual(r.errors, [], f);
    assert.deepEqual(r.unknownDirectives, [], f);
    for (const n of r.nodes) {
      if (n.type === 'marker') markers++;
      if (n.type !== 'rule' && n.type !== 'action') continue;
      statements++;
      perFile[f.slice(0, 11)] = (perFile[f.slice(0, 11)] ?? 0) + 1;
      for (let c = n.chain; c; c = c.chain) chained++;
    }
  }
  // 453 SecRule + 3 SecAction chain starters, 71 chained SecRules, 17 SecMarkers in CRS 4.28.0.
  assert.equal(statements, 456);
  assert.equal(chained, 71);
  assert.equal(markers, 17);
  assert.equal(perFile['REQUEST-942'], 68);
  assert.equal(perFile['REQUEST-941'], 42);
  assert.equal(perFile['REQUEST-920'], 68);
  assert.equal(perFile['REQUEST-949'], 28);
});

test('CRS rules keep file and line, and chains attach to their starter', () => {
  const f = 'REQUEST-920-PROTOCOL-ENFORCEMENT.conf';
  const r = parseSecLang(readFileSync(join(CRS_RULES, f), 'latin1'), f);
  const r920450 = r.nodes.find(
    (n): n is SecRuleNode => n.type === 'rule' && n.actions.some((a) => a.name === 'id' && a.value === '920450'),
  );
  assert.ok(r920450);
  assert.equal(r920450.file, f);
  assert.equal(r920450.line, 1209);
  assert.equal(r920450.variables[0]!.name, 'REQUEST_HEADERS_NAMES');
  assert.deepEqual(r920450.actions.find((a) => a.name === 'setvar'), {
    name: 'setvar',
    value: 'tx.header_name_920450_%{tx.0}=/%{tx.0}/',
  });
  assert.equal(r920450.chain?.line, 1229);
  assert.equal(r920450.chain?.variables[0]!.key, '^header_name_920450_');
  assert.equal(r920450.chain?.variables[0]!.keyIsRegex, true);
  assert.equal(r920450.chain?.operator.arg, '%{tx.restricted_headers_basic}');
});

test('continuations, comments, quotes and escapes', () => {
  const text = [
    '# a comment',
    '   # an indented comment',
    'SecRule REQUEST_HEADERS:User-Agent|!REQUEST_HEADERS:Referer "@rx [\\"\'] \\x5c\\s" \\',
    '    "id:1,\\',
    "    msg:'it\\'s, quoted',\\",
    "    setvar:'tx.a=%{tx.b}',\\",
    '    t:none,t:lowercase"',
    '',
    "SecAction \"id:2,pass,nolog,setvar:'tx.list=a, b, c'\"\r",
    'SecMarker END-TEST',
    'SecMarker "QUOTED MARKER"',
  ].join('\n');
  const r = parseSecLang(text, 'x.conf');
  assert.deepEqual(r.errors, []);
  assert.equal(r.nodes.length, 4);
  const rule = r.nodes[0] as SecRuleNode;
  assert.equal(rule.line, 3);
  // Only the quote itself is unescaped; the regex keeps its backslashes.
  assert.equal(rule.operator.arg, '[\\"\'] \\x5c\\s'.replace('\\"', '"'));
  assert.equal(rule.operator.name, 'rx');
  assert.deepEqual(
    rule.variables.map((v) => [v.exclude, v.name, v.key]),
    [
      [false, 'REQUEST_HEADERS', 'User-Agent'],
      [true, 'REQUEST_HEADERS', 'Referer'],
    ],
  );
  assert.deepEqual(rule.actions, [
    { name: 'id', value: '1' },
    { name: 'msg', value: "it's, quoted" },
    { name: 'setvar', value: 'tx.a=%{tx.b}' },
    { name: 't', value: 'none' },
    { name: 't', value: 'lowercase' },
  ]);
  assert.deepEqual(r.nodes[1], {
    type: 'action',
    file: 'x.conf',
    line: 9,
    actions: [{ name: 'id', value: '2' }, { name: 'pass' }, { name: 'nolog' }, { name: 'setvar', value: 'tx.list=a, b, c' }],
  });
  assert.deepEqual(r.nodes[2], { type: 'marker', file: 'x.conf', line: 10, name: 'END-TEST' });
  assert.deepEqual(r.nodes[3], { type: 'marker', file: 'x.conf', line: 11, name: 'QUOTED MARKER' });
});

test('chains nest: each chain action takes the next SecRule as its child', () => {
  const [top, ...rest] = rules(
    [
      'SecRule ARGS "@rx a" "id:10,phase:2,chain"',
      '  SecRule MATCHED_VARS "@rx b" "chain"',
      '    SecRule TX:1 "!@streq %{TX.2}" "setvar:tx.x=+1"',
      'SecRule ARGS "@rx c" "id:11,phase:2"',
    ].join('\n'),
  );
  assert.equal(rest.length, 1);
  assert.equal(top!.chain?.variables[0]!.name, 'MATCHED_VARS');
  assert.equal(top!.chain?.chain?.operator.negated, true);
  assert.equal(top!.chain?.chain?.operator.name, 'streq');
  assert.equal(top!.chain?.chain?.line, 3);
  assert.equal(top!.chain?.chain?.chain, undefined);
  assert.equal(rest[0]!.line, 4);
});

test('variables: counts, exclusions, regex keys holding | and quoted keys', () => {
  assert.deepEqual(
    parseVariables("&ARGS|!REQUEST_COOKIES:/^(?:_ga|_gid)$/|TX:/^x_/|ARGS:'a b'|XML://@*|args_names").map((v) => ({
      exclude: v.exclude,
      count: v.count,
      name: v.name,
      key: v.key,
      keyIsRegex: v.keyIsRegex,
    })),
    [
      { exclude: false, count: true, name: 'ARGS', key: undefined, keyIsRegex: false },
      { exclude: true, count: false, name: 'REQUEST_COOKIES', key: '^(?:_ga|_gid)$', keyIsRegex: true },
      { exclude: false, count: false, name: 'TX', key: '^x_', keyIsRegex: true },
      { exclude: false, count: false, name: 'ARGS', key: 'a b', keyIsRegex: false },
      { exclude: false, count: false, name: 'XML', key: '//@*', keyIsRegex: false },
      { exclude: false, count: false, name: 'ARGS_NAMES', key: undefined, keyIsRegex: false },
    ],
  );
  assert.throws(() => parseVariables('ARGS:/unterminated'), /unterminated/);
  assert.throws(() => parseVariables('ARGS||'), /variable name expected/);
});

test('operators: negation, implicit @rx, no argument', () => {
  assert.deepEqual(parseOperator('!@within %{tx.allowed_methods}'), {
    negated: true,
    name: 'within',
    arg: '%{tx.allowed_methods}',
    raw: '!@within %{tx.allowed_methods}',
  });
  assert.deepEqual(parseOperator('@detectSQLi'), { negated: false, name: 'detectSQLi', arg: '', raw: '@detectSQLi' });
  assert.deepEqual(parseOperator('^foo$'), { negated: false, name: 'rx', arg: '^foo$', raw: '^foo$' });
  assert.deepEqual(parseOperator('@pm ( )').arg, '( )');
});

test('actions: ctl values with ; and =, bare actions, quoted values', () => {
  assert.deepEqual(parseActions("ctl:ruleRemoveTargetByTag=xss-perf-disable;REQUEST_FILENAME, Pass ,logdata:'a,b'"), [
    { name: 'ctl', value: 'ruleRemoveTargetByTag=xss-perf-disable;REQUEST_FILENAME' },
    { name: 'pass' },
    { name: 'logdata', value: 'a,b' },
  ]);
  assert.throws(() => parseActions("msg:'never closed"), /unterminated/);
});

test('errors and unknown directives carry file and line, and parsing goes on', () => {
  const r = parseSecLang(
    [
      'SecRule ARGS "@rx a',
      'SecFooBar On',
      'SecRule ARGS "@rx b" "id:3,phase:2"',
      'SecRule ARGS "@rx c" "id:4,phase:2,chain"',
    ].join('\n'),
    'bad.conf',
  );
  assert.deepEqual(r.errors, [
    { file: 'bad.conf', line: 1, message: 'unterminated double-quoted argument' },
    { file: 'bad.conf', line: 4, message: 'chain action on the last rule of the file' },
  ]);
  assert.deepEqual(r.unknownDirectives, [{ file: 'bad.conf', line: 2, message: 'unknown directive SecFooBar' }]);
  assert.deepEqual(
    r.nodes.map((n) => n.type),
    ['directive', 'rule', 'rule'],
  );
});

test('a chained rule must be followed by a SecRule', () => {
  const r = parseSecLang(['SecRule ARGS "@rx a" "id:5,chain"', 'SecMarker X', 'SecRule ARGS "@rx b" "id:6"'].join('\n'), 'c.conf');
  assert.equal(r.errors.length, 1);
  assert.equal(r.errors[0]!.line, 2);
  // The marker still counts, and the rule after it is not glued onto the broken chain.
  assert.deepEqual(
    r.nodes.map((n) => n.type),
    ['rule', 'marker', 'rule'],
  );
  assert.equal((r.nodes[0] as SecRuleNode).chain, undefined);
});

test('XML:/* and XML://@* compile to the XML collection the request variables fill; other XPaths leave the rule partial', async () => {
  const { compileRules } = await import('../../../../src/filters/waf/ruleset.js');
  const { addBodyVars, buildHeadVars } = await import('../../../../src/filters/waf/request-vars.js');
  const rs = compileRules([
    {
      file: 'test.conf',
      text: `
SecRule XML:/* "@rx passwd" "id:700,phase:2,pass,t:none"
SecRule XML://@* "@rx script" "id:701,phase:2,pass,t:none"
SecRule ARGS|XML:/a/b "@rx x" "id:702,phase:2,pass,t:none"
`,
    },
  ]);
  assert.deepEqual(rs.unsupported, []);
  assert.deepEqual(rs.partial, [{ id: 702, file: 'test.conf', line: 4, feature: 'XML:/a/b' }]);
  const head = buildHeadVars({ method: 'POST', target: '/', httpVersion: 'HTTP/1.1', headers: [['Content-Type', 'application/xml']], remoteAddr: '127.0.0.1' });
  const vars = addBodyVars(head, Buffer.from('<r><a probe="&lt;script&gt;">/etc/passwd</a></r>'), { truncated: false });
  const t = rs.newTransaction(head);
  t.runPhase(1);
  t.runPhase(2, vars);
  assert.deepEqual(
    t.verdict().matches.map((m) => [m.id, m.variable, m.value]),
    [
      [700, 'XML:/*', '/etc/passwd'],
      [701, 'XML://@*', '<script>'],
    ],
  );
});
