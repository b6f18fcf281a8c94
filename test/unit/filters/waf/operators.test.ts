import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AhoCorasick } from '../../../../src/filters/waf/aho-corasick.js';
import { compileOperator, toInt } from '../../../../src/filters/waf/operators.js';
import { CRS_RULES_DIR } from '../../../helpers/waf-data.js';
import { UnsupportedFeature, type OperatorContext } from '../../../../src/filters/waf/types.js';

// The CRS copy the repository ships (vendor/crs).
function crsRulesDir(): string {
  assert.ok(existsSync(CRS_RULES_DIR), `CRS rules not found in ${CRS_RULES_DIR}`);
  return CRS_RULES_DIR;
}

const tmp = mkdtempSync(join(tmpdir(), 'waf-operators-'));
after(() => rmSync(tmp, { recursive: true, force: true }));
const ctx: OperatorContext = { dataDir: tmp };

function op(name: string, arg: string, context: OperatorContext = ctx) {
  return compileOperator(name, arg, context);
}
const bytes = (...b: number[]) => String.fromCharCode(...b);

describe('@rx', () => {
  it('returns the match and the groups', () => {
    assert.deepEqual(op('rx', '(?i)union\\s+(select)').match('1 UNION  SELECT 2'), ['UNION  SELECT', 'SELECT']);
    assert.equal(op('rx', 'abc').match('xyz'), undefined);
  });

  it('operator names are case-insensitive, with or without @', () => {
    assert.deepEqual(op('@RX', 'b').match('abc'), ['b']);
    assert.deepEqual(op('Rx', 'b').match('abc'), ['b']);
  });
});

describe('@pm / @pmFromFile', () => {
  it('matches phrases case-insensitively anywhere in the value', () => {
    const pm = op('pm', 'document.cookie window.location <!--');
    assert.deepEqual(pm.match('x=DOCUMENT.Cookie;'), ['document.cookie']);
    assert.deepEqual(pm.match('a <!-- b'), ['<!--']);
    assert.equal(pm.match('document.cooki'), undefined);
  });

  it('reports the phrase that ends first, the longest one ending there', () => {
    const pm = op('pm', 'bcd abcd cd zzz');
    assert.deepEqual(pm.match('xabcdzzz'), ['abcd']);
    const ac = new AhoCorasick(['he', 'she', 'his', 'hers']);
    assert.deepEqual(ac.findFirst('ushers'), { phrase: 'she', index: 1 });
    assert.deepEqual(ac.findFirst('ahishers'), { phrase: 'his', index: 1 });
    assert.equal(ac.findFirst('hxsx'), undefined);
  });

  it('folds ASCII only; phrases with single chars and hex bytes', () => {
    assert.equal(op('pm', bytes(0xe9)).match(bytes(0xc9)), undefined);
    assert.deepEqual(op('pm', '( )').match('f(x'), ['(']);
    assert.deepEqual(op('pm', 'a|0d0a|b').match('xa\r\nb'), ['a\r\nb']);
  });

  it('reads one phrase per line, skips comments and blank lines, handles CRLF', () => {
    writeFileSync(join(tmp, 'list.data'), '# a comment\r\n\r\n   \r\nfoo bar\r\n  # indented comment\nbaz\n');
    const pm = op('pmFromFile', 'list.data');
    assert.deepEqual(pm.match('xx FOO BAR yy'), ['foo bar']);
    assert.deepEqual(pm.match('xbazx'), ['baz']);
    assert.equal(pm.match('a comment'), undefined);
    assert.equal(pm.match('foo'), undefined);
  });

  it('pmf is an alias; several files add up', () => {
    writeFileSync(join(tmp, 'one.data'), 'alpha\n');
    writeFileSync(join(tmp, 'two.data'), 'beta\n');
    const pm = op('pmf', 'one.data two.data');
    assert.deepEqual(pm.match('BETA'), ['beta']);
    assert.deepEqual(pm.match('alpha'), ['alpha']);
  });

  it('loads the CRS data files', () => {
    const crs: OperatorContext = { dataDir: crsRulesDir() };
    assert.deepEqual(op('pmFromFile', 'lfi-os-files.data', crs).match('../../ETC/passwd'), ['etc/passwd']);
    assert.equal(op('pmFromFile', 'lfi-os-files.data', crs).match('/index.html'), undefined);
    assert.ok(op('pmFromFile', 'unix-shell.data', crs).match(';/bin/bash -c id'));
  });

  it('a missing file or a remote list is refused', () => {
    assert.throws(() => op('pmFromFile', 'nope.data'), UnsupportedFeature);
    assert.throws(() => op('pmFromFile', 'https://example.invalid/list'), UnsupportedFeature);
  });
});

describe('string comparisons', () => {
  it('streq, beginsWith, endsWith, contains, strmatch are exact and case-sensitive', () => {
    assert.deepEqual(op('streq', 'POST').match('POST'), ['POST']);
    assert.equal(op('streq', 'POST').match('post'), undefined);
    assert.deepEqual(op('beginsWith', 'GET /').match('GET /x'), ['GET /']);
    assert.equal(op('beginsWith', 'GET /').match('xGET /'), undefined);
    assert.deepEqual(op('endsWith', '.pdf').match('a.pdf'), ['.pdf']);
    assert.equal(op('endsWith', '.pdf').match('a.pdf.exe'), undefined);
    assert.deepEqual(op('contains', '-->').match('a-->b'), ['-->']);
    assert.equal(op('contains', '-->').match('a->b'), undefined);
    assert.deepEqual(op('strmatch', 'WebZIP').match('Mozilla WebZIP/4'), ['WebZIP']);
  });

  it('containsWord needs non-letters or the edges around the word', () => {
    const w = op('containsWord', 'select');
    assert.ok(w.match('select'));
    assert.ok(w.match('1 select 2'));
    assert.ok(w.match('1select2')); // digits are boundaries
    assert.ok(w.match('xselect select'));
    assert.equal(w.match('selection'), undefined);
    assert.equal(w.match('preselect'), undefined);
  });

  it('within: the value is a substring of the argument', () => {
    const m = op('within', 'GET HEAD POST OPTIONS');
    assert.deepEqual(m.match('POST'), ['POST']);
    assert.equal(m.match('DELETE'), undefined);
    assert.ok(m.match(''), 'an empty value is within anything');
  });
});

describe('numeric comparisons', () => {
  it('eq ge gt le lt', () => {
    assert.ok(op('eq', '0').match('0'));
    assert.equal(op('eq', '1').match('2'), undefined);
    assert.ok(op('ge', '5').match('5'));
    assert.equal(op('gt', '5').match('5'), undefined);
    assert.ok(op('gt', '5').match('6'));
    assert.ok(op('le', '5').match('5'));
    assert.ok(op('lt', '5').match('-1'));
  });

  it('parses like std::stoi: leading digits, non-numbers and overflow are 0', () => {
    assert.equal(toInt('  42abc'), 42);
    assert.equal(toInt('-7'), -7);
    assert.equal(toInt('abc'), 0);
    assert.equal(toInt('0x10'), 0);
    assert.equal(toInt('99999999999'), 0);
    assert.ok(op('eq', '0').match('abc'));
    assert.ok(op('gt', '100').match('101 bytes'));
  });
});

describe('validation operators', () => {
  it('validateByteRange matches a byte outside the ranges', () => {
    const v = op('validateByteRange', '9,10,13,32-126,128-255');
    assert.equal(v.match('normal text\r\n\t' + bytes(0x80, 0xff)), undefined);
    assert.ok(v.match('a\0b'));
    assert.ok(v.match(bytes(0x7f)));
    assert.ok(op('validateByteRange', '1-255').match('\0'));
    assert.equal(op('validateByteRange', '1-255').match(''), undefined);
  });

  it('validateByteRange refuses a bad range', () => {
    assert.throws(() => op('validateByteRange', '1-300'), UnsupportedFeature);
    assert.throws(() => op('validateByteRange', 'a-b'), UnsupportedFeature);
    assert.throws(() => op('validateByteRange', '20-10'), UnsupportedFeature);
  });

  it('validateUrlEncoding matches a % without two hex digits', () => {
    const v = op('validateUrlEncoding', '');
    assert.equal(v.match('a%20b%2F'), undefined);
    assert.equal(v.match(''), undefined);
    assert.ok(v.match('100%'));
    assert.ok(v.match('%2'));
    assert.ok(v.match('%zz'));
    assert.ok(v.match('%41%g1'));
  });

  it('validateUtf8Encoding matches malformed UTF-8', () => {
    const v = op('validateUtf8Encoding', '');
    assert.equal(v.match('ascii'), undefined);
    assert.equal(v.match(bytes(0xc3, 0xa9, 0xe2, 0x82, 0xac, 0xf0, 0x9f, 0x98, 0x80)), undefined); // é € 😀
    assert.ok(v.match(bytes(0xc3)), 'truncated');
    assert.ok(v.match(bytes(0xc3, 0x41)), 'bad continuation');
    assert.ok(v.match(bytes(0xc0, 0xaf)), 'overlong /');
    assert.ok(v.match(bytes(0xe0, 0x80, 0xaf)), 'overlong 3-byte');
    assert.ok(v.match(bytes(0xed, 0xa0, 0x80)), 'surrogate');
    assert.ok(v.match(bytes(0xf4, 0x90, 0x80, 0x80)), 'above U+10FFFF');
    assert.ok(v.match(bytes(0xff)), 'invalid lead byte');
    assert.ok(v.match(bytes(0x80)), 'lone continuation');
  });
});

describe('@ipMatch / @ipMatchFromFile', () => {
  it('matches IPv4, IPv6 and CIDR entries', () => {
    const m = op('ipMatch', '127.0.0.1,::1, 10.0.0.0/8 ,2001:db8::/32,192.168.1.0/24');
    assert.ok(m.match('127.0.0.1'));
    assert.ok(m.match('::1'));
    assert.ok(m.match('10.200.3.4'));
    assert.ok(m.match('192.168.1.255'));
    assert.equal(m.match('192.168.2.1'), undefined);
    assert.ok(m.match('2001:db8:ffff::1'));
    assert.equal(m.match('2001:db9::1'), undefined);
    assert.equal(m.match('127.0.0.2'), undefined);
    assert.equal(m.match('not an ip'), undefined);
  });

  it('answers each address for itself when addresses alternate or repeat (the last answer is kept)', () => {
    const m = op('ipMatch', '127.0.0.1,10.0.0.0/8');
    const seq = ['127.0.0.1', '127.0.0.1', '127.0.0.2', '127.0.0.2', '10.1.2.3', '127.0.0.2', '127.0.0.1', 'x', '127.0.0.1'];
    for (const ip of seq) assert.deepEqual(m.match(ip), op('ipMatch', '127.0.0.1,10.0.0.0/8').match(ip), ip);
  });

  it('an IPv4-mapped IPv6 peer matches the IPv4 entries', () => {
    const m = op('ipMatch', '127.0.0.1');
    assert.ok(m.match('::ffff:127.0.0.1'));
    assert.equal(m.match('::ffff:127.0.0.2'), undefined);
  });

  it('expands :: and embedded IPv4 in IPv6 entries', () => {
    assert.ok(op('ipMatch', '::ffff:0:0/96').match('::ffff:1.2.3.4'));
    assert.ok(op('ipMatch', 'fe80::/10').match('fe80::1%eth0'));
    assert.equal(op('ipMatch', 'fe80::/10').match('fec0::1'), undefined);
  });

  it('reads addresses from a file and refuses bad entries', () => {
    writeFileSync(join(tmp, 'ips.txt'), '# blocked\n203.0.113.0/24\n\n2001:db8::1\n');
    const m = op('ipMatchFromFile', 'ips.txt');
    assert.ok(m.match('203.0.113.77'));
    assert.ok(m.match('2001:db8::1'));
    assert.equal(m.match('2001:db8::2'), undefined);
    assert.throws(() => op('ipMatch', '300.1.1.1'), UnsupportedFeature);
    assert.throws(() => op('ipMatch', '10.0.0.0/33'), UnsupportedFeature);
  });
});

describe('libinjection operators', () => {
  it('detectSQLi puts the fingerprint in [0]', () => {
    const m = op('detectSQLi', '');
    const r = m.match("1' OR '1'='1");
    assert.ok(r, 'detected');
    assert.match(r[0], /^[A-Za-z0-9&()1;,.]{1,5}$/);
    assert.notEqual(r[0], "1' OR '1'='1");
    assert.equal(m.match('hello world'), undefined);
  });

  it('detectXSS', () => {
    const m = op('detectXSS', '');
    assert.ok(m.match('<script>alert(1)</script>'));
    assert.equal(m.match('hello world'), undefined);
  });
});

describe('other operators', () => {
  it('unconditionalMatch always matches, noMatch never', () => {
    assert.deepEqual(op('unconditionalMatch', '').match('x'), ['x']);
    assert.equal(op('noMatch', '').match('x'), undefined);
  });

  it('unknown operators are refused, not skipped', () => {
    for (const name of ['rbl', 'geoLookup', 'inspectFile', 'verifyCC', 'fuzzyHash', 'bogus']) {
      assert.throws(() => op(name, 'x'), UnsupportedFeature, name);
    }
  });
});
