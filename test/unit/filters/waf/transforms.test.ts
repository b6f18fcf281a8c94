import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { CRS_RULES_DIR } from '../../../helpers/waf-data.js';
import { cmdLine, hasSpacePair, pipelineTrigger, transformTrigger, TRANSFORMS } from '../../../../src/filters/waf/transforms.js';
import { seeded } from '../../../helpers/random.js';

function t(name: string, input: string): string {
  const fn = TRANSFORMS.get(name);
  assert.ok(fn, `transform ${name} exists`);
  return fn(input);
}

// Bytes as a byte string (one char per byte).
const bytes = (...b: number[]) => String.fromCharCode(...b);

// The CRS copy the repository ships (vendor/crs).
function crsRulesDir(): string {
  assert.ok(existsSync(CRS_RULES_DIR), `CRS rules not found in ${CRS_RULES_DIR}`);
  return CRS_RULES_DIR;
}

describe('transformation names', () => {
  it('covers every transformation the CRS request rules use', () => {
    const dir = crsRulesDir();
    const used = new Set<string>();
    for (const f of readdirSync(dir).filter((n) => /^REQUEST-9\d\d-.*\.conf$/.test(n))) {
      const conf = readFileSync(join(dir, f), 'latin1');
      for (const m of conf.matchAll(/t:([a-zA-Z0-9]+)/g)) used.add(m[1].toLowerCase());
    }
    used.delete('alert'); // from a comment in 941, not a transformation
    assert.ok(used.size >= 20, `found ${used.size} names`);
    for (const name of used) assert.ok(TRANSFORMS.has(name), `t:${name}`);
  });
});

describe('urlDecode / urlDecodeUni', () => {
  it('decodes %XX and +, keeps invalid or truncated escapes', () => {
    assert.equal(t('urldecode', 'a%20b+c%2fd'), 'a b c/d');
    assert.equal(t('urldecode', '%'), '%');
    assert.equal(t('urldecode', '%0'), '%0');
    assert.equal(t('urldecode', '%0g%20'), '%0g ');
    assert.equal(t('urldecode', '%%20'), '% ');
    assert.equal(t('urldecode', '%u0041'), '%u0041');
    assert.equal(t('urldecode', '%ff%00'), bytes(0xff, 0));
  });

  it('urlDecodeUni: %uXXXX keeps the low byte, folds full-width ASCII', () => {
    assert.equal(t('urldecodeuni', 'var%3d%20@.%3d%20%28%20SELECT'), 'var= @.= ( SELECT');
    assert.equal(t('urldecodeuni', '%u0041%U0042'), 'AB');
    assert.equal(t('urldecodeuni', '%u1141'), 'A');
    // U+FF01..U+FF5E are full-width ASCII: ＜ｓｃｒｉｐｔ＞
    assert.equal(t('urldecodeuni', '%uff1c%uff53%uff43%uff52%uff49%uff50%uff54%uff1e'), '<script>');
    assert.equal(t('urldecodeuni', '%uff01%uff5e'), '!~');
    // Outside that range the low byte is used as is.
    assert.equal(t('urldecodeuni', '%uff00%uff7f%uff5f'), bytes(0, 0x7f, 0x5f));
  });

  it('urlDecodeUni: the best-fit table of ModSecurity\'s recommended configuration (unicode.mapping, code page 20127)', () => {
    // What ModSecurity 3.0.9 with SecUnicodeMapFile unicode.mapping 20127 gives for the same input:
    // U+2019 is in the table ('), U+4E2D is not (low byte 0x2d), U+00E9 -> e, U+0127 -> h.
    assert.equal(t('urldecodeuni', '%u2019%u4e2d%u00e9%uff1c%u0041%u0127a'), "'-e<Aha");
    assert.equal(t('urldecodeuni', '%u201c%u201d%u2018%u00ab%u00bb%u2013%u00a0'), '""\'<>- ');
    // The chain 942100 and the XSS rules use: UTF-8 curly quotes reach libinjection as ASCII quotes.
    assert.equal(t('urldecodeuni', t('utf8tounicode', '\xe2\x80\x99 OR \xe2\x80\x991\xe2\x80\x99=\xe2\x80\x991')), "' OR '1'='1");
  });

  it('urlDecodeUni: invalid %u forms are kept', () => {
    assert.equal(t('urldecodeuni', '%u%u0020'), '%u ');
    assert.equal(t('urldecodeuni', '%u0%u0020'), '%u0 ');
    assert.equal(t('urldecodeuni', '%u000g%u0020'), '%u000g ');
    assert.equal(t('urldecodeuni', '%u004'), '%u004');
    assert.equal(t('urldecodeuni', '%+'), '% ');
  });

  it('returns the same string when there is nothing to decode', () => {
    const s = 'plain value without escapes';
    assert.equal(t('urldecodeuni', s), s);
    assert.equal(t('urldecode', s), s);
  });
});

describe('case and whitespace', () => {
  it('lowercase folds ASCII only', () => {
    assert.equal(t('lowercase', 'SeLeCT ÀB'), 'select Àb');
    assert.equal(t('lowercase', bytes(0xc0, 0x41)), bytes(0xc0, 0x61));
  });

  it('removeWhitespace removes isspace() and NBSP', () => {
    assert.equal(t('removewhitespace', 'a b\tc\nd\x0be\x0cf\rg' + bytes(0xa0) + 'h'), 'abcdefgh');
  });

  it('compressWhitespace turns each run into one space', () => {
    assert.equal(t('compresswhitespace', 'a  \t\n b' + bytes(0xa0) + 'c'), 'a b c');
    const s = 'one space each';
    assert.equal(t('compresswhitespace', s), s);
  });

  it('trim, trimLeft, trimRight', () => {
    assert.equal(t('trim', ' \t a b \n'), 'a b');
    assert.equal(t('trimleft', '  a '), 'a ');
    assert.equal(t('trimright', '  a '), '  a');
  });

  it('removeNulls and replaceNulls', () => {
    assert.equal(t('removenulls', 'a\0b\0\0c'), 'abc');
    assert.equal(t('replacenulls', 'a\0b'), 'a b');
  });
});

describe('jsDecode', () => {
  it('decodes \\uHHHH (low byte, full-width folded), \\xHH, octal and C escapes', () => {
    assert.equal(t('jsdecode', '\\u0061lert\\x28\\x31\\x29'), 'alert(1)');
    assert.equal(t('jsdecode', '\\uff1cscript\\uFF1E'), '<script>');
    assert.equal(t('jsdecode', '\\101\\x42\\103'), 'ABC');
    assert.equal(t('jsdecode', '\\n\\t\\r\\b\\f\\v\\a'), '\n\t\r\b\f\v\x07');
  });

  it('takes at most one byte of octal', () => {
    assert.equal(t('jsdecode', '\\1234'), 'S4'); // \123 then 4
    assert.equal(t('jsdecode', '\\477'), "'7"); // \47 then 7: \477 would not fit a byte
  });

  it('drops the backslash of other escapes, keeps a trailing one', () => {
    assert.equal(t('jsdecode', '\\q\\"\\\\'), 'q"\\');
    assert.equal(t('jsdecode', 'a\\'), 'a\\');
    assert.equal(t('jsdecode', '\\u00'), 'u00');
  });
});

describe('htmlEntityDecode', () => {
  it('decodes numeric entities with or without ;', () => {
    assert.equal(t('htmlentitydecode', '&#60;script&#x3e;&#X3C;&#62'), '<script><>');
    assert.equal(t('htmlentitydecode', '&#0000106avascript'), 'javascript');
  });

  it('decodes quot amp lt gt nbsp, case-insensitive, ; optional', () => {
    assert.equal(t('htmlentitydecode', '&lt;&LT&gt;&quot&amp;&nbsp;'), '<<>"&' + bytes(0xa0));
  });

  it('keeps what it does not decode', () => {
    assert.equal(t('htmlentitydecode', '&foo;&#;&#x;&#xZ&'), '&foo;&#;&#x;&#xZ&');
    assert.equal(t('htmlentitydecode', '&ltscript'), '&ltscript'); // the name is "ltscript"
  });

  it('cuts values to one byte, saturating huge numbers', () => {
    assert.equal(t('htmlentitydecode', '&#321;'), 'A'); // 0x141
    assert.equal(t('htmlentitydecode', '&#99999999999999999999;'), bytes(0xff));
  });
});

describe('utf8toUnicode', () => {
  it('turns UTF-8 sequences into %uXXXX (lower case, at least 4 digits)', () => {
    // Ā € 😀 as UTF-8 bytes
    const input = bytes(0xc4, 0x80) + 'x' + bytes(0xe2, 0x82, 0xac) + bytes(0xf0, 0x9f, 0x98, 0x80);
    assert.equal(t('utf8tounicode', input), '%u0100x%u20ac%u1f600');
    assert.equal(t('utf8tounicode', bytes(0xe3, 0x83, 0x8f)), '%u30cf');
  });

  it('decodes overlong forms, keeps broken bytes', () => {
    assert.equal(t('utf8tounicode', '..' + bytes(0xc0, 0xaf) + '..'), '..%u002f..');
    assert.equal(t('utf8tounicode', bytes(0xc3) + 'A'), bytes(0xc3) + 'A');
    assert.equal(t('utf8tounicode', 'hello\0world'), 'hello\0world');
  });
});

describe('cssDecode', () => {
  it('uses the last two hex digits and eats one space after', () => {
    assert.equal(t('cssdecode', '\\1A\\1 A\\1234567\\123456 7\\1x\\1 x'), '\x1a\x01AV7V7\x01x\x01x');
    assert.equal(t('cssdecode', 'j\\61vascript'), 'javascript');
    assert.equal(t('cssdecode', '\\000065xpression'), 'expression');
  });

  it('folds full-width ASCII, drops line continuations and a trailing backslash', () => {
    assert.equal(t('cssdecode', '\\ff01\\ff5e'), '!~');
    assert.equal(t('cssdecode', 'a\\\nb'), 'ab');
    assert.equal(t('cssdecode', 'test\\'), 'test');
    assert.equal(t('cssdecode', '\\n\\r\\?'), 'nr?');
  });
});

describe('escapeSeqDecode', () => {
  it('decodes ANSI C escapes', () => {
    assert.equal(t('escapeseqdecode', '\\n\\x41\\X42\\103\\\\\\?'), '\nABC\\?');
    assert.equal(t('escapeseqdecode', '\\777'), bytes(0xff));
  });

  it('drops the backslash of unknown escapes', () => {
    assert.equal(t('escapeseqdecode', '\\q\\xZZ'), 'qxZZ');
    assert.equal(t('escapeseqdecode', 'a\\'), 'a\\');
  });
});

describe('cmdLine', () => {
  it('normalises a Windows command line', () => {
    assert.equal(t('cmdline', 'C:\\Windows\\"sys"te^m32 , ;  /c  (echo) ; DIR'), 'c:windowssystem32/c(echo) dir');
  });

  it('normalises a Unix command line', () => {
    assert.equal(t('cmdline', "c'a't /etc/pass\"wd;\tl\\s"), 'cat/etc/passwd ls');
    assert.equal(t('cmdline', 'ls -la'), 'ls -la');
  });

  it('returns the input itself when nothing changes, and changes after an unchanged prefix', () => {
    const s = 'running shoe model 3/x(y)';
    assert.equal(cmdLine(s), s);
    assert.equal(cmdLine('abc  d'), 'abc d');
    assert.equal(cmdLine('abc /d'), 'abc/d');
    assert.equal(cmdLine('abc (d'), 'abc(d');
    assert.equal(cmdLine(' x'), ' x');
    assert.equal(cmdLine('ab Cd'), 'ab cd');
    assert.equal(cmdLine('a b,\tc'), 'a b c');
    assert.equal(cmdLine(''), '');
  });

  it('agrees with ModSecurity\'s definition, written out char by char, on 20,000 random strings (long ones, bytes above 0x7f, chars above 0xff)', () => {
    // ModSecurity's cmdLine (transformations/cmd_line.cc), one char at a time with string appends.
    const reference = (input: string): string => {
      let out = '';
      let space = false;
      for (const c of input) {
        if (c === '"' || c === "'" || c === '\\' || c === '^') continue;
        if (c === ' ' || c === ',' || c === ';' || c === '\t' || c === '\r' || c === '\n') {
          if (!space) {
            out += ' ';
            space = true;
          }
        } else if (c === '/' || c === '(') {
          if (space) out = out.slice(0, -1);
          space = false;
          out += c;
        } else {
          out += c >= 'A' && c <= 'Z' ? c.toLowerCase() : c;
          space = false;
        }
      }
      return out;
    };
    const alphabet = ['a', 'Z', 'q', '0', ' ', ' ', ',', ';', '\t', '\r', '\n', '/', '(', '"', "'", '\\', '^', '\xe9', '\xc4', '\u0100', '\u4e2d'];
    let seed = 7;
    const rnd = (n: number): number => {
      seed = (seed * 1103515245 + 12345) >>> 0;
      return seed % n;
    };
    for (let k = 0; k < 20000; k++) {
      const len = k % 100 === 0 ? 9000 + rnd(9000) : rnd(40);
      let s = '';
      for (let i = 0; i < len; i++) s += alphabet[rnd(alphabet.length)];
      assert.equal(cmdLine(s), reference(s), JSON.stringify(s.slice(0, 80)));
    }
  });
});

describe('comments', () => {
  it('replaceComments turns each C comment into one space', () => {
    assert.equal(t('replacecomments', 'UNION/**/SELECT/*x*/1/*open'), 'UNION SELECT 1 ');
  });

  it('removeCommentsChar removes markers but keeps the text', () => {
    assert.equal(t('removecommentschar', 'UN/**/ION SEL/*x*/ECT'), 'UNION SELxECT');
    assert.equal(t('removecommentschar', '<!--a-->#b--c'), 'abc');
    // A marker joined by a removal behind the scan position stays.
    assert.equal(t('removecommentschar', '-/**/-'), '--');
  });
});

describe('normalizePath', () => {
  const cases: Array<[string, string]> = [
    ['', ''],
    ['/foo/bar/baz', '/foo/bar/baz'],
    ['x', 'x'],
    ['.', ''],
    ['./', ''],
    ['./..', '..'],
    ['./../', '../'],
    ['../.', '..'],
    ['../../', '../../'],
    ['/dir/foo//bar', '/dir/foo/bar'],
    ['dir/foo//bar/', 'dir/foo/bar/'],
    ['dir/../foo', 'foo'],
    ['dir/../../foo', '../foo'],
    ['dir/./.././../../foo/bar', '../../foo/bar'],
    ['dir/./.././../../foo/bar/..', '../../foo'],
    ['dir//.//..//.//..//..//foo//bar//', '../../foo/bar/'],
    ['dir/subdir/subsubdir/subsubsubdir/../../..', 'dir'],
    ['/dir/./subdir/../subsubdir/../subsubsubdir/../', '/dir/'],
    ['/./.././../../../../../../../\\u0000/../etc/./passwd', '/etc/passwd'],
    ['/', '/'],
  ];
  for (const [input, output] of cases) {
    it(`${JSON.stringify(input)} -> ${JSON.stringify(output)}`, () => {
      assert.equal(t('normalizepath', input), output);
    });
  }

  it('normalizePathWin treats backslashes as slashes', () => {
    assert.equal(t('normalizepathwin', 'C:\\inetpub\\..\\..\\windows\\\\win.ini'), 'windows/win.ini');
    assert.equal(t('normalizepath', 'a\\..\\b'), 'a\\..\\b');
  });
});

describe('base64, hex, hashes, length', () => {
  it('base64Decode stops at the first char outside the alphabet', () => {
    assert.equal(t('base64decode', 'dW5pb24gc2VsZWN0'), 'union select');
    assert.equal(t('base64decode', 'YWJjZA=='), 'abcd');
    assert.equal(t('base64decode', 'YWJjZA'), 'abcd');
    assert.equal(t('base64decode', 'YWJj!ZGVm'), 'abc');
  });

  it('base64DecodeExt skips chars outside the alphabet', () => {
    assert.equal(t('base64decodeext', 'YW Jj.ZG\nVm'), 'abcdef');
  });

  it('hexEncode, sqlHexDecode', () => {
    assert.equal(t('hexencode', 'a' + bytes(0xff, 0)), '61ff00');
    assert.equal(t('sqlhexdecode', 'SELECT 0x414243, 0xZZ'), 'SELECT ABC, 0xZZ');
  });

  it('sha1 and md5 give the raw digest bytes', () => {
    assert.equal(Buffer.from(t('sha1', 'abc'), 'latin1').toString('hex'), 'a9993e364706816aba3e25717850c26c9cd0d89d');
    assert.equal(Buffer.from(t('md5', 'abc'), 'latin1').toString('hex'), '900150983cd24fb0d6963f7d28e17f72');
  });

  it('length counts bytes', () => {
    assert.equal(t('length', bytes(0xc3, 0xa9) + 'x'), '3');
  });
});

describe('fast path', () => {
  it('returns the very same string when nothing changes', () => {
    const s = 'nothing_to_change_here';
    for (const name of ['urldecodeuni', 'lowercase', 'jsdecode', 'htmlentitydecode', 'utf8tounicode', 'removenulls', 'cssdecode', 'cmdline', 'removewhitespace', 'replacecomments', 'removecommentschar', 'normalizepath', 'normalizepathwin', 'escapeseqdecode', 'compresswhitespace', 'trim']) {
      assert.equal(Object.is(t(name, s), s), true, name);
    }
  });
});

describe('triggers: a value without a transformation\'s trigger bytes comes out the same but for ASCII case', () => {
  const fold = (s: string): string => s.replace(/[A-Z]/g, (c) => c.toLowerCase());
  const has = (bits: Uint32Array, c: number): boolean => ((bits[c >>> 5]! >>> (c & 31)) & 1) === 1;
  const rnd = seeded(11);
  // Bytes that make transformations act, plus ordinary text, so random strings hit many cases.
  const alphabet = [...'%+&\\/*.-#"\'^,;()<> \t\n\v\f\r\0\xa0\xc3\xa9aAzZ09_=?!:@x~`', ...Array.from({ length: 256 }, (_, c) => String.fromCharCode(c))];
  for (const [name, fn] of TRANSFORMS) {
    const trig = transformTrigger(fn);
    if (trig === 'all') continue;
    it(name, () => {
      let kept = 0;
      for (let i = 0; i < 20000; i++) {
        let s = '';
        const len = rnd(24);
        for (let j = 0; j < len; j++) s += alphabet[rnd(4) === 0 ? rnd(alphabet.length) : rnd(52)]!;
        // Drop the trigger bytes (case-folded, as the engine's presence bitmap sees them).
        s = [...s].filter((ch) => !has(trig.bytes, fold(ch).charCodeAt(0))).join('');
        if (trig.spacePair && hasSpacePair(s)) continue;
        kept++;
        assert.equal(fold(fn(s)), fold(s), `${name}(${JSON.stringify(s)})`);
      }
      assert.ok(kept > 5000, `only ${kept} strings tried`);
    });
  }
  it('a pipeline is triggered by any of its steps; unknown transformations promise nothing', () => {
    const p = pipelineTrigger([TRANSFORMS.get('lowercase')!, TRANSFORMS.get('urldecodeuni')!, TRANSFORMS.get('cmdline')!]);
    assert.notEqual(p, 'all');
    if (p === 'all') return;
    for (const c of '%+"\\,') assert.ok(has(p.bytes, c.charCodeAt(0)), c);
    assert.ok(!has(p.bytes, 'a'.charCodeAt(0)));
    assert.equal(p.spacePair, true);
    assert.equal(pipelineTrigger([TRANSFORMS.get('base64decode')!]), 'all');
    assert.equal(transformTrigger((s) => s + 'x'), 'all');
  });
});
