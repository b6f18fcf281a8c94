import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Verdict } from '../../../../src/filters/waf/engine.js';
import { compileRules, loadCrs, type RuleSet, type RuleSetOptions } from '../../../../src/filters/waf/ruleset.js';
import type { RequestVars, VarEntry } from '../../../../src/filters/waf/types.js';

const CRS_RULES = '/work/shared/crs/rules';

// ---------------------------------------------------------------------------
// A minimal RequestVars, enough for these tests (the gateway uses request-vars.ts).

function urlDecode(s: string): string {
  return s.replace(/\+/g, ' ').replace(/%([0-9a-fA-F]{2})/g, (_, h: string) => String.fromCharCode(parseInt(h, 16)));
}

function parseArgs(q: string): VarEntry[] {
  if (q === '') return [];
  return q.split('&').map((p) => {
    const i = p.indexOf('=');
    return i < 0 ? { name: urlDecode(p), value: '' } : { name: urlDecode(p.slice(0, i)), value: urlDecode(p.slice(i + 1)) };
  });
}

interface Req {
  method?: string;
  target: string;
  headers?: [string, string][];
  /** application/x-www-form-urlencoded body. */
  form?: string;
  remoteAddr?: string;
}

function names(l: VarEntry[]): VarEntry[] {
  return l.map((e) => ({ name: e.name, value: e.name }));
}

/** Head variables, or head + body variables when `withBody`. */
function vars(req: Req, withBody: boolean): RequestVars {
  const method = req.method ?? 'GET';
  const headers = req.headers ?? BROWSER;
  const qi = req.target.indexOf('?');
  const path = qi < 0 ? req.target : req.target.slice(0, qi);
  const query = qi < 0 ? '' : req.target.slice(qi + 1);
  const get = parseArgs(query);
  const post = withBody && req.form !== undefined ? parseArgs(req.form) : [];
  const args = [...get, ...post];
  const cookies: VarEntry[] = [];
  for (const [k, v] of headers) {
    if (k.toLowerCase() !== 'cookie') continue;
    for (const c of v.split(/;\s*/)) {
      const i = c.indexOf('=');
      if (c !== '') cookies.push(i < 0 ? { name: c, value: '' } : { name: c.slice(0, i), value: c.slice(i + 1) });
    }
  }
  const filename = urlDecode(path);
  const collections = new Map<string, readonly VarEntry[]>([
    ['ARGS', args],
    ['ARGS_GET', get],
    ['ARGS_POST', post],
    ['ARGS_NAMES', names(args)],
    ['ARGS_GET_NAMES', names(get)],
    ['ARGS_POST_NAMES', names(post)],
    ['REQUEST_HEADERS', headers.map(([name, value]) => ({ name, value }))],
    ['REQUEST_HEADERS_NAMES', headers.map(([name]) => ({ name, value: name }))],
    ['REQUEST_COOKIES', cookies],
    ['REQUEST_COOKIES_NAMES', names(cookies)],
  ]);
  const scalars = new Map<string, string>([
    ['REQUEST_METHOD', method],
    ['REQUEST_URI', req.target],
    ['REQUEST_URI_RAW', req.target],
    ['REQUEST_FILENAME', filename],
    ['REQUEST_BASENAME', filename.slice(filename.lastIndexOf('/') + 1)],
    ['REQUEST_LINE', `${method} ${req.target} HTTP/1.1`],
    ['REQUEST_PROTOCOL', 'HTTP/1.1'],
    ['QUERY_STRING', query],
    ['REMOTE_ADDR', req.remoteAddr ?? '192.0.2.10'],
    ['UNIQUE_ID', 'Z1fQa3c9e0d1b2a4f5e6d7c8'],
    ['ARGS_COMBINED_SIZE', String(args.reduce((n, e) => n + e.name.length + e.value.length, 0))],
  ]);
  if (req.form !== undefined) scalars.set('REQBODY_PROCESSOR', 'URLENCODED');
  if (withBody && req.form !== undefined) {
    scalars.set('REQUEST_BODY', req.form);
    scalars.set('REQUEST_BODY_LENGTH', String(req.form.length));
  }
  return { collections, scalars };
}

const BROWSER: [string, string][] = [
  ['Host', 'shop.example.com'],
  ['User-Agent', 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36'],
  ['Accept', 'text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8'],
  ['Accept-Language', 'en-US,en;q=0.9'],
  ['Accept-Encoding', 'gzip, deflate, br'],
  ['Cookie', 'session=8f14e45fceea167a5a36dedd4bea2543; theme=dark'],
  ['Connection', 'keep-alive'],
];

function run(rs: RuleSet, req: Req): Verdict & { txValue(k: string): string | undefined; stats: { rules: number; operators: number; prefiltered: number } } {
  const t = rs.newTransaction(vars(req, false));
  t.runPhase(1);
  t.runPhase(2, vars(req, true));
  return Object.assign(t.verdict(), { txValue: (k: string) => t.txValue(k), stats: t.stats });
}

function ids(v: Verdict): number[] {
  return v.matches.map((m) => m.id);
}

function rules(text: string, opts: RuleSetOptions = {}): RuleSet {
  const rs = compileRules([{ file: 'test.conf', text }], opts);
  assert.deepEqual(rs.parseErrors, []);
  return rs;
}

// ---------------------------------------------------------------------------
// The engine on rule files written here

test('setvar runs once per matching value; a later rule compares the sum and denies', () => {
  const rs = rules(`
SecAction "id:100,phase:1,pass,nolog,setvar:tx.score=0"
SecRule ARGS "@rx attack" "id:101,phase:2,block,capture,t:none,t:lowercase,\\
    msg:'attack in %{MATCHED_VAR_NAME}',logdata:'found %{TX.0} in %{MATCHED_VAR}',severity:CRITICAL,tag:'demo',\\
    setvar:tx.score=+5"
SecRule TX:SCORE "@ge 10" "id:102,phase:2,deny,status:406,msg:'score %{tx.score}'"
`);
  const one = run(rs, { target: '/x?a=ATTACK&b=fine' });
  assert.equal(one.txValue('score'), '5');
  assert.equal(one.blocked, false);
  assert.deepEqual(one.matches, [
    {
      id: 101,
      msg: 'attack in ARGS:a',
      severity: 'CRITICAL',
      tags: ['demo'],
      file: 'test.conf',
      line: 3,
      variable: 'ARGS:a',
      value: 'ATTACK',
      data: 'found attack in attack',
    },
  ]);

  const two = run(rs, { target: '/x?a=ATTACK&b=an%20attack' });
  assert.equal(two.txValue('score'), '10');
  assert.equal(two.blocked, true);
  assert.deepEqual(two.interruption, { ruleId: 102, action: 'deny', status: 406 });
  assert.deepEqual(ids(two), [101, 101, 102]);
  assert.equal(two.matches[1]!.variable, 'ARGS:b');
  assert.equal(two.matches[2]!.msg, 'score 10');
});

test('chains: the starter sets variables per match, the child reads MATCHED_VARS, ctl runs only on a full match', () => {
  const rs = rules(`
SecRule ARGS:/^p_/ "@rx ." "id:200,phase:2,pass,msg:'evil among p_',setvar:tx.seen=+1,chain"
    SecRule MATCHED_VARS "@streq evil" "setvar:tx.evil=+1,ctl:ruleRemoveById=300"
SecRule ARGS "@rx ." "id:300,phase:2,pass,msg:'still running'"
`);
  const clean = run(rs, { target: '/?p_a=good&p_b=fine' });
  assert.equal(clean.txValue('seen'), '2');
  assert.equal(clean.txValue('evil'), undefined);
  assert.deepEqual(ids(clean), [300, 300]);

  const evil = run(rs, { target: '/?p_a=good&p_b=evil' });
  assert.equal(evil.txValue('seen'), '2');
  assert.equal(evil.txValue('evil'), '1');
  // Logged once for the whole chain, with the starter's first matched variable; 300 was removed by the ctl.
  assert.deepEqual(ids(evil), [200]);
  assert.equal(evil.matches[0]!.variable, 'ARGS:p_a');
});

test('captures reach the chained rule through TX:1 and TX:2', () => {
  const rs = rules(`
SecRule ARGS:pair "@rx ^(\\w+)=(\\w+)$" "id:210,phase:2,pass,capture,msg:'same both sides',chain"
    SecRule TX:1 "@streq %{TX.2}" "setvar:tx.tautology=1"
`);
  assert.deepEqual(ids(run(rs, { target: '/?pair=abc%3Dabc' })), [210]);
  assert.deepEqual(ids(run(rs, { target: '/?pair=abc%3Dabd' })), []);
});

test('groups are found only for a rule that reads them (capture, not negated)', () => {
  const rs = rules(`
SecRule ARGS:a "@rx ^(\\w+)-(\\w+)$" "id:220,phase:2,pass,msg:'no capture'"
SecRule ARGS:b "!@rx ^(\\w+)$" "id:221,phase:2,pass,capture,msg:'negated'"
SecRule ARGS:c "@rx ^(\\w+)_(\\w+)$" "id:222,phase:2,pass,capture,msg:'captured',setvar:tx.second=%{TX.2}"
`);
  // Each rule's operator, counted: match() finds the groups, test() only whether there is a match.
  const calls = new Map<number, { match: number; test: number }>();
  for (const r of rs.rules) {
    const op = r.op?.compiled;
    if (!op?.test) continue;
    const n = { match: 0, test: 0 };
    calls.set(r.id, n);
    const { match, test } = op;
    op.match = (input) => (n.match++, match.call(op, input));
    op.test = (input) => (n.test++, test.call(op, input));
  }
  const v = run(rs, { target: '/?a=x-y&b=x%20y&c=left_right' });
  assert.deepEqual(ids(v), [220, 221, 222]);
  assert.equal(v.txValue('second'), 'right');
  assert.deepEqual(Object.fromEntries(calls), { 220: { match: 0, test: 1 }, 221: { match: 0, test: 1 }, 222: { match: 1, test: 0 } });

  // One operator for both rules (the same pattern): the value's remembered
  // match, found without groups for the first, is looked at again for the second.
  const shared = rules(`
SecRule ARGS:a "@rx ^(\\w+)-(\\w+)$" "id:230,phase:2,pass,msg:'no capture'"
SecRule ARGS:a "@rx ^(\\w+)-(\\w+)$" "id:231,phase:2,pass,capture,msg:'captured',setvar:tx.second=%{TX.2}"
`);
  const w = run(shared, { target: '/?a=left-right' });
  assert.deepEqual(ids(w), [230, 231]);
  assert.equal(w.txValue('second'), 'right');
});

test('skipAfter jumps to its marker, skip:N over the next rules', () => {
  const rs = rules(`
SecRule ARGS:mode "@streq fast" "id:400,phase:2,pass,nolog,skipAfter:END-SLOW"
SecRule ARGS:mode "@rx ." "id:401,phase:2,pass,msg:'slow path'"
SecMarker END-SLOW
SecAction "id:402,phase:2,pass,nolog,skip:1"
SecAction "id:403,phase:2,pass,msg:'skipped'"
SecAction "id:404,phase:2,pass,msg:'last'"
`);
  assert.deepEqual(ids(run(rs, { target: '/?mode=fast' })), [404]);
  assert.deepEqual(ids(run(rs, { target: '/?mode=slow' })), [401, 404]);
});

test('counts, key regexes, exclusions, negation, case-insensitive keys and t:none', () => {
  const rs = rules(`
SecRule &ARGS "@gt 2" "id:500,phase:2,pass,msg:'many args'"
SecRule ARGS|!ARGS:safe "@contains <" "id:501,phase:2,pass,msg:'angle bracket'"
SecRule ARGS:/^num_/ "!@rx ^[0-9]+$" "id:502,phase:2,pass,msg:'not a number'"
SecRule REQUEST_HEADERS:x-test "@streq ABC" "id:503,phase:1,pass,t:lowercase,t:none,msg:'t:none dropped lowercase'"
SecRule REQUEST_HEADERS:X-TEST "@streq abc" "id:504,phase:1,pass,t:lowercase,msg:'lowercased'"
SecRule &REQUEST_HEADERS:X-Missing "@eq 0" "id:505,phase:1,pass,msg:'no such header'"
`);
  const v = run(rs, {
    target: '/?safe=%3Cb%3E&other=%3Ci%3E&num_1=12&num_2=1x',
    headers: [
      ['Host', 'a.example'],
      ['X-Test', 'ABC'],
    ],
  });
  assert.deepEqual(
    v.matches.map((m) => `${m.id} ${m.variable}`),
    ['503 REQUEST_HEADERS:X-Test', '504 REQUEST_HEADERS:X-Test', '505 &REQUEST_HEADERS:X-Missing', '500 &ARGS', '501 ARGS:other', '502 ARGS:num_2'],
  );
});

test('multiMatch tests the value before and after each transformation', () => {
  const rs = rules(`
SecRule ARGS "@rx %41" "id:520,phase:2,pass,t:none,t:urlDecode,msg:'final value only'"
SecRule ARGS "@rx %41" "id:521,phase:2,pass,multiMatch,t:none,t:urlDecode,msg:'every stage'"
`);
  // The argument arrives decoded once as %41; urlDecode turns it into A.
  assert.deepEqual(ids(run(rs, { target: '/?a=%2541' })), [521]);
});

test('the @rx literal prefilter skips the regex only where it cannot match; negation and multiMatch unchanged', () => {
  const rs = rules(`
SecRule ARGS "@rx (?i)<script[^>]*>" "id:201,phase:2,pass,log,t:none,t:urlDecodeUni"
SecRule ARGS "!@rx (?i)^(?:safe|fine)$" "id:202,phase:2,pass,log"
SecRule ARGS "@rx union\\s+select" "id:203,phase:2,pass,log,multiMatch,t:lowercase"
`);
  const hit = run(rs, { target: '/x?a=%3CScRiPt%20src%3Dx%3E&b=fine&c=UNION%20SELECT' });
  assert.deepEqual(ids(hit), [201, 202, 202, 203]);
  assert.deepEqual(hit.matches.map((m) => m.variable), ['ARGS:a', 'ARGS:a', 'ARGS:c', 'ARGS:c']);
  const benign = run(rs, { target: '/x?a=hello&b=safe&c=union' });
  assert.deepEqual(ids(benign), [202, 202]);
  // Values without `<script`, `safe`/`fine` or `union` never reach their regex.
  assert.ok(benign.stats.prefiltered >= 4, JSON.stringify(benign.stats));
});

test('character clauses skip a junk-tolerant @rx without a literal; rules sharing a pipeline see the same value', () => {
  const rs = rules(`
SecRule ARGS "@rx (?i)(?:;|b)[\\s\\x0b]*w[\\"']*h[\\"']*o[\\"']*a[\\"']*m[\\"']*i" "id:301,phase:2,pass,log,t:none,t:urlDecodeUni,t:lowercase"
SecRule ARGS "@rx ^x y$" "id:302,phase:2,pass,log,t:none,t:urlDecodeUni,t:lowercase"
SecRule ARGS "@rx ^x%20y$" "id:303,phase:2,pass,log,t:none,t:urlDecodeUni"
`);
  const hit = run(rs, { target: '/x?a=%3Bw%22hoami&b=X%2520Y&c=plain' });
  assert.deepEqual(ids(hit), [301, 302]);
  const benign = run(rs, { target: '/x?a=whoami&b=plain' });
  assert.deepEqual(ids(benign), []);
  // No literal prefilter (a single letter is required), but neither value has a `;` or `b`: 301's regex never runs.
  assert.ok(benign.stats.prefiltered >= 2, JSON.stringify(benign.stats));
});

test('SecRuleUpdateTargetById and SecRuleRemoveById in a rule file apply to the rules before them', () => {
  const rs = rules(`
SecRule ARGS "@rx bad" "id:530,phase:2,pass,msg:'args'"
SecRule ARGS "@rx bad" "id:531,phase:2,pass,msg:'removed'"
SecRuleUpdateTargetById 530 "!ARGS:comment|REQUEST_COOKIES"
SecRuleRemoveById 531
SecDefaultAction "phase:2,log,deny"
`);
  assert.deepEqual(
    run(rs, { target: '/?comment=bad&q=bad', headers: [['Cookie', 'c=bad']] }).matches.map((m) => `${m.id} ${m.variable}`),
    ['530 ARGS:q', '530 REQUEST_COOKIES:c'],
  );
  assert.equal(rs.counts.total.removed, 1);
  // What the engine reads but does not apply is said, with its place.
  assert.deepEqual(rs.ignoredDirectives, [{ file: 'test.conf', line: 6, message: 'SecDefaultAction is not applied by the engine' }]);
});

test('operator arguments with macros are expanded per request', () => {
  const rs = rules(
    `
SecRule ARGS:a "@streq %{ARGS.b}" "id:510,phase:2,pass,msg:'a equals b'"
SecRule REQUEST_METHOD "!@within %{tx.allowed_methods}" "id:511,phase:1,pass,msg:'method %{REQUEST_METHOD} not allowed'"
`,
    { tx: { allowed_methods: 'GET HEAD' } },
  );
  assert.deepEqual(ids(run(rs, { target: '/?a=x&b=x' })), [510]);
  assert.deepEqual(ids(run(rs, { target: '/?a=x&b=y' })), []);
  const put = run(rs, { method: 'PUT', target: '/' });
  assert.deepEqual(ids(put), [511]);
  assert.equal(put.matches[0]!.msg, 'method PUT not allowed');
});

test('deny in phase 1 ends the request: phase 2 does not run', () => {
  const rs = rules(`
SecRule REQUEST_METHOD "@streq DELETE" "id:700,phase:1,deny,status:405,msg:'no deletes'"
SecAction "id:701,phase:2,pass,msg:'phase 2 ran'"
`);
  const t = rs.newTransaction(vars({ method: 'DELETE', target: '/' }, false));
  assert.deepEqual(t.runPhase(1), { ruleId: 700, action: 'deny', status: 405 });
  assert.deepEqual(t.runPhase(2, vars({ method: 'DELETE', target: '/' }, true)), { ruleId: 700, action: 'deny', status: 405 });
  assert.deepEqual(ids(t.verdict()), [700]);
  assert.deepEqual(ids(run(rs, { method: 'GET', target: '/' })), [701]);
});

test('ctl actions that steer the body parser are reported', () => {
  const rs = rules(`
SecRule REQUEST_HEADERS:Content-Type "@rx ^text/plain" "id:710,phase:1,pass,nolog,ctl:requestBodyProcessor=URLENCODED"
SecRule REQBODY_PROCESSOR "!@rx (?:URLENCODED|MULTIPART|XML|JSON)" "id:711,phase:1,pass,nolog,ctl:forceRequestBodyVariable=On"
`);
  const plain = rs.newTransaction(vars({ target: '/', headers: [['Content-Type', 'text/plain']] }, false));
  plain.runPhase(1);
  assert.equal(plain.requestBodyProcessor, 'URLENCODED');
  assert.equal(plain.forceRequestBodyVariable, false);
  assert.equal(plain.verdict().requestBodyProcessor, 'URLENCODED');
  const none = rs.newTransaction({ collections: new Map(), scalars: new Map([['REQBODY_PROCESSOR', '']]) });
  none.runPhase(1);
  assert.equal(none.verdict().forceRequestBodyVariable, true);
  assert.equal(none.verdict().requestBodyProcessor, undefined);
});

test('unsupported features are reported per rule, never dropped silently; partial targets still run', () => {
  const rs = compileRules([{ file: 'test.conf', text: `
SecRule ARGS "@inspectFile /bin/true" "id:600,phase:2,pass"
SecRule ARGS "@rx x" "id:601,phase:2,pass,initcol:ip=%{remote_addr}"
SecRule ARGS|XML:/a/b|XML://@c "@rx x" "id:602,phase:2,pass,msg:'partial'"
SecRule XML:/a/b "@rx x" "id:603,phase:2,pass"
SecRule ARGS "@rx x" "id:604,phase:4,pass"
SecRule ARGS "@rx x" "id:605,phase:2,pass,t:notATransform"
SecRule ARGS "@rx x" "id:606,phase:2,pass,setvar:ip.hits=+1"
SecRule ARGS "@rx x" "id:607,phase:2,pass,chain"
` }]);
  assert.deepEqual(rs.parseErrors, [{ file: 'test.conf', line: 9, message: 'chain action on the last rule of the file' }]);
  assert.deepEqual(
    rs.unsupported.map((u) => [u.id, u.line]),
    [
      [600, 2],
      [601, 3],
      [603, 5],
      [604, 6],
      [605, 7],
      [606, 8],
      [607, 9],
    ],
  );
  assert.match(rs.unsupported[0]!.feature, /inspectFile/);
  assert.match(rs.unsupported[1]!.feature, /initcol/);
  assert.match(rs.unsupported[2]!.feature, /XML/);
  assert.match(rs.unsupported[3]!.feature, /phase:4/);
  assert.match(rs.unsupported[4]!.feature, /t:notATransform/);
  assert.match(rs.unsupported[5]!.feature, /IP/);
  assert.match(rs.unsupported[6]!.feature, /chain/);
  assert.deepEqual(rs.partial, [{ id: 602, file: 'test.conf', line: 4, feature: 'XML:/a/b, XML://@c' }]);
  assert.deepEqual(
    rs.rules.map((r) => r.id),
    [602],
  );
  assert.deepEqual(rs.counts.total, { rules: 8, full: 0, partial: 1, unsupported: 7, removed: 0 });
  assert.deepEqual(ids(run(rs, { target: '/?q=x' })), [602]);
});

test('exclusions remove rules by id, range and tag, and targets by id or tag; derive shares compiled rules', () => {
  const text = `
SecRule ARGS "@rx bad" "id:800,phase:2,pass,tag:'attack-a',msg:'a'"
SecRule ARGS "@rx bad" "id:801,phase:2,pass,tag:'attack-b',msg:'b'"
SecRule ARGS|REQUEST_COOKIES "@rx bad" "id:802,phase:2,pass,tag:'attack-b',msg:'c'"
SecRule ARGS "@rx bad" "id:900,phase:2,pass,msg:'d'"
`;
  const base = rules(text);
  const req: Req = { target: '/?password=bad&q=bad', headers: [['Cookie', 'pref=bad']] };
  assert.deepEqual(ids(run(base, req)), [800, 800, 801, 801, 802, 802, 802, 900, 900]);

  assert.deepEqual(ids(run(base.derive({ removeIds: [800, '900-999'] }), req)), [801, 801, 802, 802, 802]);
  assert.deepEqual(ids(run(base.derive({ removeTags: ['attack-b'] }), req)), [800, 800, 900, 900]);
  const noPassword = base.derive({ removeTargets: [{ tag: 'attack-b', target: 'ARGS:password' }, { id: 802, target: 'REQUEST_COOKIES' }] });
  assert.deepEqual(
    run(noPassword, req).matches.map((m) => `${m.id} ${m.variable}`),
    ['800 ARGS:password', '800 ARGS:q', '801 ARGS:q', '802 ARGS:q', '900 ARGS:password', '900 ARGS:q'],
  );
  const regexKey = base.derive({ removeTargets: [{ id: '800-802', target: 'ARGS:/^pass/' }] });
  assert.deepEqual(
    run(regexKey, req).matches.filter((m) => m.id === 800).map((m) => m.variable),
    ['ARGS:q'],
  );
  // Exclusions add up across derive(); counts say what was removed.
  const both = base.derive({ removeIds: [800] }).derive({ removeIds: [801] });
  assert.equal(both.counts.total.removed, 2);
  assert.deepEqual(ids(run(both, req)), [802, 802, 802, 900, 900]);
  // Nothing is recompiled: the derived set runs the same operator objects.
  assert.equal(both.rules.find((r) => r.id === 900)!.op, base.rules.find((r) => r.id === 900)!.op);
});

// ---------------------------------------------------------------------------
// CRS itself

const crs = loadCrs({ dir: CRS_RULES });

test('CRS request rules load: counts, version, and what does not run', () => {
  assert.equal(crs.version, 'OWASP_CRS/4.28.0');
  assert.deepEqual(crs.parseErrors, []);
  assert.deepEqual(crs.unknownDirectives, []);
  assert.equal(crs.counts.total.rules, 456);
  // Persistent collections (initcol) are the only thing CRS's request rules ask for that the engine lacks.
  assert.deepEqual(
    crs.unsupported.map((u) => [u.id, u.feature]),
    [[901320, 'initcol:global=global']],
  );
  // XML:/* and XML://@* are built from XML bodies: no CRS request rule runs without a target.
  assert.deepEqual(crs.partial, []);
  const t = crs.counts.total;
  assert.equal(t.full + t.partial + t.unsupported + t.removed, t.rules);
  assert.equal(crs.counts.byFamily['942']!.rules, 68);
  assert.equal(crs.counts.byFile['REQUEST-941-APPLICATION-ATTACK-XSS.conf']!.rules, 42);
});

test('CRS: a plain browser GET scores 0', () => {
  const v = run(crs, { target: '/products/shoes?color=blue&size=42&page=2' });
  assert.equal(v.inboundScore, 0);
  assert.equal(v.threshold, 5);
  assert.equal(v.blocked, false);
  assert.deepEqual(v.matches, []);
});

test("CRS at PL1: ?id=1' or '1'='1 is blocked, with 942100 among the matches", () => {
  const v = run(crs, { target: "/item?id=1%27%20or%20%271%27%3D%271" });
  assert.equal(v.blocked, true);
  assert.equal(v.interruption?.ruleId, 949110);
  assert.ok(v.inboundScore >= 5);
  const m = v.matches.find((x) => x.id === 942100);
  assert.ok(m, `942100 not in ${ids(v).join(',')}`);
  assert.equal(m.variable, 'ARGS:id');
  assert.equal(m.value, "1' or '1'='1");
  assert.equal(m.severity, 'CRITICAL');
  assert.ok(m.tags.includes('attack-sqli'));
  assert.equal(m.file, 'REQUEST-942-APPLICATION-ATTACK-SQLI.conf');
  assert.match(v.matches.at(-1)!.msg, /^Inbound Anomaly Score Exceeded \(Total Score: \d+\)$/);
});

test('CRS at PL1: /index.php?file=../../etc/passwd is blocked by 930 rules', () => {
  const v = run(crs, { target: '/index.php?file=../../etc/passwd' });
  assert.equal(v.blocked, true);
  const lfi = ids(v).filter((id) => id >= 930000 && id < 931000);
  assert.ok(lfi.includes(930100) && lfi.includes(930110) && lfi.includes(930120), `930 matches: ${lfi.join(',')}`);
  assert.equal(v.matches.find((m) => m.id === 930120)!.variable, 'ARGS:file');
});

test('CRS exclusions: the excluded rule or target no longer scores', () => {
  const sqli: Req = { target: "/item?id=1%27%20or%20%271%27%3D%271" };
  const noTarget = crs.derive({ removeTargets: [{ id: 942100, target: 'ARGS:id' }] });
  assert.ok(!ids(run(noTarget, sqli)).includes(942100));
  const noRule = crs.derive({ removeIds: [942100] });
  assert.ok(!ids(run(noRule, sqli)).includes(942100));
  const noSqli = crs.derive({ removeTags: ['attack-sqli'] });
  assert.deepEqual(
    ids(run(noSqli, sqli)).filter((id) => id >= 942000 && id < 943000),
    [],
  );
  // The LFI request still blocks: the exclusions only touched SQLi.
  assert.equal(run(noSqli, { target: '/index.php?file=../../etc/passwd' }).blocked, true);
});

test('CRS paranoia: rules above the detection level are skipped, not run', () => {
  const req: Req = { target: '/products/shoes?color=blue&size=42&page=2' };
  const pl1 = run(crs, req).stats.rules;
  const pl4 = run(crs.derive({ blockingParanoiaLevel: 4 }), req).stats.rules;
  const above1 = crs.rules.filter((r) => (r.paranoiaLevel ?? 1) > 1).length;
  assert.ok(above1 > 100);
  // Every rule tagged PL2..4 is skipped at PL1 by CRS's own skipAfter rules.
  assert.ok(pl1 <= crs.rules.length - above1, `${pl1} rules ran at PL1`);
  assert.ok(pl4 > pl1 + above1 - 5, `${pl4} rules ran at PL4, ${pl1} at PL1`);
  assert.throws(() => crs.derive({ blockingParanoiaLevel: 3, detectionParanoiaLevel: 2 }), /below/);
});

test('CRS early blocking: 949111 stops the request after phase 1', () => {
  // A scanner's User-Agent is a phase 1 detection (913100).
  const headers: [string, string][] = [
    ['Host', 'shop.example.com'],
    ['User-Agent', 'Mozilla/5.00 (Nikto/2.1.6) (Evasions:None) (Test:007152)'],
    ['Accept', '*/*'],
  ];
  const late = crs.newTransaction(vars({ target: '/', headers }, false));
  assert.equal(late.runPhase(1), undefined);
  assert.equal(late.runPhase(2, vars({ target: '/', headers }, true))?.ruleId, 949110);

  const early = crs.derive({ earlyBlocking: true }).newTransaction(vars({ target: '/', headers }, false));
  assert.equal(early.runPhase(1)?.ruleId, 949111);
  assert.ok(ids(early.verdict()).includes(913100));
});

// What a value is known not to match is kept with the value across requests
// (engine.ts Slots.nm) and lets later requests skip those rules; it must
// never hide a match another route's rule set (other exclusions) would make.
test('a value known not to match under one route is still matched under another without the exclusion, in either order', () => {
  const sqli: Req = { target: "/item?id=1%27%20or%20%271%27%3D%271" };
  for (const order of [['excluded', 'full'], ['full', 'excluded']] as const) {
    const full = crs.derive({});
    const excluded = crs.derive({ removeTargets: [{ id: 942100, target: 'ARGS:id' }] });
    for (let round = 0; round < 3; round++) {
      for (const which of order) {
        const got = ids(run(which === 'full' ? full : excluded, sqli)).includes(942100);
        assert.equal(got, which === 'full', `${order.join(' then ')}, round ${round + 1}: ${which} ${got ? 'matched' : 'did not match'} 942100`);
      }
    }
  }
});

test('a benign request seen before runs almost no operators from its third sighting, with the same verdict; an attack in one of its values still blocks', () => {
  const rs = crs.derive({});
  const form = 'note=' + 'Please leave the parcel at the front door. '.repeat(12);
  const headers: [string, string][] = [...BROWSER, ['Content-Type', 'application/x-www-form-urlencoded'], ['Content-Length', String(form.length)]];
  const req: Req = { method: 'POST', target: '/api/items?page=2&sort=-created&q=blue+running+shoes&category=footwear', form, headers };
  const first = run(rs, req);
  const second = run(rs, req);
  const third = run(rs, req);
  assert.equal(first.blocked, false);
  for (const r of [second, third]) {
    assert.deepEqual(ids(r), ids(first));
    assert.equal(r.inboundScore, first.inboundScore);
  }
  // A value seen once is not kept (it would be copied into the old
  // generation for nothing when it never comes back): the second sighting
  // runs the operators again, and keeps what they answered.
  assert.ok(second.stats.operators > first.stats.operators * 0.9, `operators: first ${first.stats.operators}, second ${second.stats.operators}`);
  // From the third, the request's values (a 500-byte form value among them)
  // are remembered; what still runs is mostly CRS's own TX-only control rules
  // (paranoia skips, scoring) and rules that do match (920350's numeric Host and the like).
  assert.ok(third.stats.operators < first.stats.operators * 0.7, `operators: first ${first.stats.operators}, third ${third.stats.operators}`);
  const attack = run(rs, { ...req, target: req.target.replace('footwear', "footwear'%20union%20select%20password%20from%20users--") });
  assert.equal(attack.blocked, true);
  assert.ok(ids(attack).some((id) => id >= 942000 && id < 943000), ids(attack).join(','));
});

test('a TX check whose variable a later rule may set is evaluated per request, not folded into the rule set', () => {
  const rs = rules(`
SecAction "id:1,phase:1,pass,nolog,setvar:tx.level=1"
SecRule REQUEST_HEADERS:x-level "@streq two" "id:2,phase:1,pass,nolog,setvar:tx.level=2"
SecRule TX:LEVEL "@lt 2" "id:3,phase:1,pass,nolog,skipAfter:END-LEVEL-2"
SecRule ARGS "@rx attack" "id:4,phase:1,pass,log,msg:'level 2 rule'"
SecMarker END-LEVEL-2
SecRule TX:LEVEL "@lt 5" "id:5,phase:1,pass,nolog,skipAfter:END-ALL"
SecRule ARGS "@rx attack" "id:6,phase:1,pass,log,msg:'never reached: nothing sets tx.level to 5 or more'"
SecMarker END-ALL
`);
  const target = '/x?q=attack';
  for (let round = 0; round < 2; round++) {
    assert.deepEqual(ids(run(rs, { target })), [], 'level 1: rule 4 skipped');
    assert.deepEqual(ids(run(rs, { target, headers: [['Host', 'a'], ['x-level', 'two']] })), [4], 'level 2: rule 4 runs');
  }
});

test('TX keeps a Map order over the shared prologue: a key deleted and set again comes last, and other requests still see the prologue', () => {
  const rs = rules(`
SecAction "id:1,phase:1,pass,nolog,setvar:tx.a=1,setvar:tx.b=2,setvar:tx.c=3"
SecRule REQUEST_HEADERS:x-move "@streq yes" "id:2,phase:1,pass,nolog,setvar:!tx.a,setvar:tx.a=4"
SecRule REQUEST_HEADERS:x-drop "@streq yes" "id:3,phase:1,pass,nolog,setvar:!tx.b"
SecRule TX:/^[abc]$/ "@rx ." "id:4,phase:1,pass,nolog,setvar:tx.order=%{tx.order}%{MATCHED_VAR_NAME}=%{MATCHED_VAR};"
`);
  const plain = { target: '/x' };
  const moved = { target: '/x', headers: [['Host', 'a'], ['x-move', 'yes']] as [string, string][] };
  const dropped = { target: '/x', headers: [['Host', 'a'], ['x-drop', 'yes']] as [string, string][] };
  for (let round = 0; round < 2; round++) {
    assert.equal(run(rs, plain).txValue('order'), 'TX:a=1;TX:b=2;TX:c=3;');
    assert.equal(run(rs, moved).txValue('order'), 'TX:b=2;TX:c=3;TX:a=4;', 'a deleted and set again: last');
    assert.equal(run(rs, dropped).txValue('order'), 'TX:a=1;TX:c=3;');
    assert.equal(run(rs, dropped).txValue('b'), undefined);
  }
});

test('a chain whose first rule reads only TX that nothing later writes: not run when that rule cannot match, enforced when a setting makes it', () => {
  // CRS's optional limits (920380 and its kind): the chain only counts ARGS once tx.max_num_args is set.
  const text = (setting: string) => `
SecAction "id:1,phase:1,pass,nolog${setting}"
SecRule TX:MAX_NUM_ARGS "@eq 3" "id:3,phase:2,pass,log,msg:'three allowed',chain"
    SecRule ARGS:a "@streq x"
SecRule &TX:MAX_NUM_ARGS "@eq 1" "id:2,phase:2,deny,log,msg:'too many arguments',chain"
    SecRule &ARGS "@gt %{tx.max_num_args}" "t:none"
`;
  const many = { target: '/x?a=x&b=2&c=3&d=4' };
  const unset = rules(text(''));
  const limited = rules(text(',setvar:tx.max_num_args=3'));
  for (let round = 0; round < 2; round++) {
    const free = run(unset, many);
    assert.equal(free.blocked, false, 'no limit set: any number of arguments');
    // Neither chain can match without the setting: their operators do not run at all.
    assert.equal(free.stats.operators, 0, `operators ${free.stats.operators}`);
    const over = run(limited, many);
    assert.equal(over.blocked, true, 'the limit set: four arguments are too many');
    assert.deepEqual(ids(over), [3, 2]);
    const under = run(limited, { target: '/x?a=y&b=2' });
    assert.equal(under.blocked, false);
    assert.deepEqual(ids(under), []);
  }
});
