// @detectXSS against the reference libinjection (test/oracle): every line of
// the libinjection corpus (as written and URL-decoded) plus seeded generated
// markup must get the same verdict.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { detectXSS } from '../../../../src/filters/waf/libinjection/xss.js';
import { decodeCorpusLine as urlDecode, LIBINJECTION_DIR } from '../../../helpers/waf-data.js';
import { libinjectionOracle, oracleUnavailable } from '../../../oracle/libinjection.js';

const CORPUS_DIR = LIBINJECTION_DIR;
const MUTATIONS = 50_000;
const SEED = 0x5eed_0941;

interface CorpusFile {
  name: string;
  /** Every line, as bytes. */
  lines: string[];
  /** Whether a line is a sample (the corpus README leaves out blanks and '#' comments). */
  isSample: boolean[];
}

function loadCorpus(): CorpusFile[] {
  return readdirSync(CORPUS_DIR)
    .filter((f) => f.endsWith('.txt'))
    .sort()
    .map((name) => {
      const lines = readFileSync(join(CORPUS_DIR, name), 'latin1').replace(/\n$/, '').split('\n');
      return { name, lines, isSample: lines.map((l) => l !== '' && !l.startsWith('#')) };
    });
}

function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

// Pieces the generator assembles: names and values on both sides of every
// list check, and the bytes the tokenizer treats specially.
const TAGS = [
  'script', 'SCRIPT', 'ScRiPt', 'scr\0ipt', '\0script', 'scriptx', 'svg', 'SVGfoo', 's\0vg', 'sv', 'xsl', 'xsl:template', 'xs',
  'iframe', 'frame', 'frameset', 'applet', 'base', 'comment', 'embed', 'handler', 'import', 'isindex', 'link', 'listener',
  'meta', 'noscript', 'object', 'style', 'vmlframe', 'xml', 'xss', 'img', 'a', 'b', 'body', 'div', 'form', 'video', 'x', 'in\0put', '',
];
const ATTRS = [
  'onerror', 'onload', 'ONCLICK', 'on', 'one', 'onx', 'onxy', 'onxyz', 'o\0nload', 'xmlns', 'xmlns:xlink', 'XMLNSx', 'xml\0ns',
  'xlink', 'xlink:href', 'xlinkfoo', 'href', 'HREF', 'hr\0ef', 'src', 'style', 'STYLE', 'filter', 'attributename', 'attributeName',
  'action', 'by', 'background', 'dataformatas', 'datasrc', 'dynsrc', 'formaction', 'folder', 'from', 'handler', 'lowsrc',
  'poster', 'to', 'values', 'title', 'alt', 'id', 'value', 'data', 'x', '=', '"', "'", '`', 'a=b',
];
const VALUES = [
  'javascript:alert(1)', 'JaVaScRiPt:x', 'java', 'jav', 'jav&#x41;script:', '&#106;avascript:', '&#x6A;avascript', '&#x6a',
  '&#0000106;ava', '&#x', '&#', '&', '&#;', '&#x;', '&#xg', '&#x10004A;ava', '&#x1000ff', '&#1048831', '&#74', '&#9;javascript',
  '&#32;&#10;java', ' \t\x01javascript:', '\x80\xffjavascript:', '\x7fjava', 'vbscript:', 'VBScript', 'vb', 'data:text/html',
  'DATA', 'dat', 'view-source:', 'VIEW-SOURCE', 'view-sourc', 'http://x', 'onload', 'onxyz', 'xmlns', 'style', 'href', 'src',
  'attributename', 'j\0ava', 'j\nava', 'j\rava', 'j&#10;ava', 'j&#0;ava', 'ja&#13;va', '&#x4A&#x41va', '&#106&#97va', '&#x14A;ava',
  '&#x16A;ava', '&#330;ava', '&amp;java', '', 'abc', 'alert(1)', '1',
];
const SEPS = [' ', ' ', '\t', '\n', '\v', '\f', '\r', '\0', '/', '//', '\xff', '\x80', '\xa0', '', '  ', ' \0 '];
const QUOTES = ['"', "'", '`', '', '"'];
const MARKUP = [
  '<', '</', '<!', '<!--', '-->', '--!>', '-\0->', '-\0\0->', '--', '-!', '<?', '<%', '%>', '%', '<![CDATA[', '<![cdata[', ']]>', ']',
  '<!DOCTYPE', '<!doctype html>', '<!DOCTYP', '<!docTYPE', '>', '/>', '[if IE]', '[IF', 'xml', 'XML', 'import', 'IMPORT', 'entity',
  '`', '=', '==', '<>', '</>', '< ', '<\0', '</ ', '</1', '<1', '&#', '"', "'", '\xff', '\0',
];

class Generator {
  constructor(private readonly rnd: () => number, private readonly corpus: readonly string[]) {}

  int(n: number): number {
    return Math.floor(this.rnd() * n);
  }

  pick<T>(xs: readonly T[]): T {
    return xs[this.int(xs.length)]!;
  }

  byte(): string {
    const r = this.rnd();
    if (r < 0.3) return String.fromCharCode(this.int(0x21)); // controls, space
    if (r < 0.5) return String.fromCharCode(0x80 + this.int(0x80));
    return String.fromCharCode(this.int(0x100));
  }

  caseFlip(s: string): string {
    return s.replace(/[a-z]/gi, (c) => (this.rnd() < 0.3 ? (c === c.toLowerCase() ? c.toUpperCase() : c.toLowerCase()) : c));
  }

  attribute(): string {
    let out = this.caseFlip(this.pick(ATTRS));
    const r = this.rnd();
    if (r < 0.8) {
      if (this.rnd() < 0.3) out += this.pick(SEPS);
      out += '=';
      if (this.rnd() < 0.3) out += this.pick(SEPS);
      const q = this.pick(QUOTES);
      out += q + this.pick(VALUES) + (this.rnd() < 0.85 ? q : '');
    }
    return out;
  }

  element(): string {
    let out = (this.rnd() < 0.15 ? '</' : '<') + this.caseFlip(this.pick(TAGS));
    const n = this.int(4);
    for (let i = 0; i < n; i++) out += this.pick(SEPS.filter((s) => s !== '')) + this.attribute();
    const end = this.rnd();
    if (end < 0.6) out += '>';
    else if (end < 0.75) out += '/>';
    else if (end < 0.85) out += this.pick(SEPS);
    return out;
  }

  /** A fragment that starts inside an attribute value, as a request value in a template would. */
  inValue(): string {
    return this.pick(VALUES) + this.pick(QUOTES) + this.pick(SEPS) + this.attribute() + (this.rnd() < 0.5 ? this.pick(SEPS) + this.attribute() : '');
  }

  pieces(): string {
    let out = '';
    const n = 1 + this.int(8);
    for (let i = 0; i < n; i++) {
      const r = this.rnd();
      if (r < 0.35) out += this.pick(MARKUP);
      else if (r < 0.5) out += this.element();
      else if (r < 0.6) out += this.attribute();
      else if (r < 0.7) out += this.pick(VALUES);
      else if (r < 0.8) out += this.pick(SEPS);
      else if (r < 0.9) out += this.byte();
      else out += this.caseFlip(this.pick(TAGS));
    }
    return out;
  }

  slice(s: string): string {
    const a = this.int(s.length + 1);
    const b = a + this.int(s.length - a + 1);
    return s.slice(a, b);
  }

  edit(s: string): string {
    const n = 1 + this.int(4);
    for (let i = 0; i < n; i++) {
      const at = this.int(s.length + 1);
      const r = this.rnd();
      if (r < 0.3) s = s.slice(0, at) + this.byte() + s.slice(at);
      else if (r < 0.5) s = s.slice(0, at) + this.pick([...MARKUP, ...SEPS, ...QUOTES]) + s.slice(at);
      else if (r < 0.65) s = s.slice(0, at) + s.slice(at + 1 + this.int(4));
      else if (r < 0.8 && at < s.length) s = s.slice(0, at) + this.byte() + s.slice(at + 1);
      else s = this.caseFlip(s);
    }
    return s;
  }

  /** A URL value that may spell a script scheme through entities, NULs, newlines and junk. */
  urlValue(): string {
    const word = this.pick(['javascript:', 'vbscript:', 'data:', 'view-source:', 'java', 'jav', 'dat', 'vbs', 'http:']);
    let out = '';
    const lead = this.int(3);
    for (let i = 0; i < lead; i++) out += this.pick([' ', '\t', '\x01', '\x7f', '\x80', '\xff', '&#9;', '&#32;', '&#x20', '&#0;', '\0']);
    for (const ch of word) {
      const r = this.rnd();
      const code = ch.charCodeAt(0);
      if (r < 0.45) out += this.rnd() < 0.3 ? ch.toUpperCase() : ch;
      else if (r < 0.6) out += '&#' + '0'.repeat(this.int(3)) + code + (this.rnd() < 0.6 ? ';' : '');
      else if (r < 0.75) out += '&#' + this.pick(['x', 'X']) + code.toString(16) + (this.rnd() < 0.6 ? ';' : '');
      else if (r < 0.8) out += '&#x' + (code + 0x100 * (1 + this.int(0x10000))).toString(16) + ';'; // low byte still spells the letter
      else if (r < 0.85) out += '&#' + (code + 0x1000000 * (1 + this.int(3))) + ';'; // beyond the largest entity
      else if (r < 0.95) out += this.pick(['\0', '\n', '\r', '\t', '&#10;', '&#0;', '&#', '&#x', '&', '&#;', '&#' + ch, '&#x' + ch]) + ch;
      else out += this.byte() + ch;
    }
    return out + this.pick(['', 'alert(1)', ';', ' ', '"', "'"]);
  }

  /** Comment-like markup with its possible ends and what IE would run inside. */
  comment(): string {
    let out = this.pick(['<!--', '<!-', '<!', '<?', '<%', '</1', '</ ', '<!--!']);
    const n = this.int(4);
    for (let i = 0; i < n; i++) out += this.pick(['x', '-', '--', '-\0', '!', '`', '[if', '[IF', 'xml', 'XmL', 'import', 'ENTITY', '%', '>', ' ', '\0', this.byte()]);
    out += this.pick(['-->', '--!>', '-\0->', '-\0\0!>', '-\0-\0>', '- ->', '--', '-', '%>', '% >', '>', '']);
    if (this.rnd() < 0.7) out += this.pick(['`', '[if', 'xml', ' x', this.element(), this.attribute(), '<!--[if', '<?import']);
    return out;
  }

  /** CDATA sections with near-miss ends and markup after them. */
  cdata(): string {
    let out = this.pick(['<![CDATA[', '<![CDATA', '<![cdata[', '<![CDATA[]']);
    if (this.rnd() < 0.5) out += this.pick(['x', ']', ']]', '>', '`', this.element()]);
    out += this.pick([']]>', ']]', ']>', '] ]>', ']]]>', ']]\0>', '']);
    return out + this.pick([this.element(), this.comment(), 'x', '']) + (this.rnd() < 0.5 ? ']]>' + this.element() : '');
  }

  next(): string {
    // A leading 0xFF ends the unquoted-value pass at once, leaving the
    // page-text pass alone to decide (when no quotes follow).
    if (this.rnd() < 0.15) return this.pick(['\xff', ' \xff', '\0\xff']) + this.any();
    return this.any();
  }

  any(): string {
    const r = this.rnd();
    if (r < 0.05) return '<a ' + this.pick(['href', 'src', 'style', 'attributename', 'x']) + '=' + this.pick(QUOTES) + this.urlValue();
    if (r < 0.1) return this.pick(['', '"', "'", '`', ' ']) + this.pick(['href=', 'src= ', 'action =', 'xlink:href=', 'values="']) + this.urlValue();
    if (r < 0.13) return this.comment();
    if (r < 0.15) return this.cdata();
    if (r < 0.25) return this.slice(this.pick(this.corpus)) + this.slice(this.pick(this.corpus));
    if (r < 0.4) return this.edit(this.pick(this.corpus));
    if (r < 0.6) return this.pieces();
    if (r < 0.7) return this.inValue();
    if (r < 0.8) return this.pick(this.corpus).slice(0, this.int(40)) + this.element() + this.slice(this.pick(this.corpus));
    if (r < 0.9) return this.edit(this.pieces());
    return this.edit(this.element() + this.element());
  }
}

/** Inputs where the port and the reference disagree, formatted for a failure message. */
function disagreements(inputs: readonly string[], expected: readonly boolean[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < inputs.length; i++) {
    const got = detectXSS(inputs[i]!);
    if (got !== expected[i]) out.push(`${JSON.stringify(inputs[i])}: port ${got}, libinjection ${expected[i]}`);
  }
  return out;
}

describe('detectXSS on known inputs', () => {
  // Verdicts checked against libinjection 3.9.2.
  const cases: Array<[string, boolean]> = [
    ['<script>alert(1)</script>', true],
    ['<img src=x onerror=alert(1)>', true],
    ['onload=alert(1)', true], // lands inside an unquoted attribute
    ['"><svg/onload=alert(1)>', true],
    ['<a href="&#x6A;avascript:alert(1)">', true], // entity-encoded scheme
    ['<a href=" \x01javascript:x">', true],
    ['<a href="https://example.com/">', false],
    ['<!DOCTYPE html>', true],
    ['<!--[if IE]><![endif]-->', true],
    ['<!--`-->', true],
    ['<b>bold</b> and <i>italic</i>', false],
    ['<x onfo=1>', false], // event handlers have five or more bytes
    ['<x onfoo=1>', true],
    ['<x style=>', true],
    ['<scr\0ipt>', true], // NULs inside tag names are ignored
    ['<img src=x \xffonerror=1>', false], // 0xFF ends the tag as end of input would
    ['a=b&c=d', false],
    ['x < y and y > z', false],
    ['', false],
  ];
  for (const [input, want] of cases) {
    it(`${JSON.stringify(input)} is ${want ? 'XSS' : 'not XSS'}`, () => assert.equal(detectXSS(input), want));
  }
});

describe('detectXSS agrees with libinjection', () => {
  const why = oracleUnavailable();
  const corpus = loadCorpus();

  it('on every corpus line, as written and URL-decoded', { skip: why ? `reference libinjection unavailable: ${why}` : false }, (t) => {
    const inputs: string[] = [];
    const origin: Array<{ file: string; sample: boolean }> = [];
    for (const f of corpus) {
      f.lines.forEach((line, i) => {
        inputs.push(line, urlDecode(line));
        origin.push({ file: f.name, sample: false }, { file: f.name, sample: f.isSample[i]! });
      });
    }
    const expected = libinjectionOracle(inputs).map((r) => r.isXss);
    const bad = disagreements(inputs, expected);
    assert.deepEqual(bad, [], `${bad.length} of ${inputs.length} corpus inputs disagree`);

    for (const f of corpus) {
      let hit = 0;
      let n = 0;
      for (let i = 0; i < inputs.length; i++) {
        if (origin[i]!.file !== f.name || !origin[i]!.sample) continue;
        n++;
        if (detectXSS(inputs[i]!)) hit++;
      }
      t.diagnostic(`${f.name}: ${hit}/${n} samples (URL-decoded) flagged (${((100 * hit) / n).toFixed(1)} %)`);
    }
    t.diagnostic(`${inputs.length} corpus inputs, 0 disagreements`);
  });

  it(`on ${MUTATIONS} seeded generated inputs`, { skip: why ? `reference libinjection unavailable: ${why}` : false }, (t) => {
    const lines = corpus.flatMap((f) => f.lines.filter((_, i) => f.isSample[i]).map(urlDecode));
    const gen = new Generator(mulberry32(SEED), lines);
    const inputs = Array.from({ length: MUTATIONS }, () => gen.next());
    const expected = libinjectionOracle(inputs).map((r) => r.isXss);
    const positives = expected.filter(Boolean).length;
    // Both verdicts must be well represented, or the comparison proves little.
    assert.ok(positives > MUTATIONS * 0.2 && positives < MUTATIONS * 0.8, `generated set is lopsided: ${positives} XSS of ${MUTATIONS}`);
    const bad = disagreements(inputs, expected);
    assert.deepEqual(bad.slice(0, 20), [], `${bad.length} of ${inputs.length} generated inputs disagree`);
    t.diagnostic(`${inputs.length} generated inputs (${positives} XSS per libinjection), 0 disagreements`);
  });
});
