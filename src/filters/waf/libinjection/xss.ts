// `@detectXSS`: libinjection's XSS detector.
//
// Behaviour follows libinjection 3.9.2 (Nick Galbreath, BSD-3-Clause,
// https://github.com/client9/libinjection), the version ModSecurity v3 builds
// in, so that CRS rule 941100 flags what it flags under ModSecurity. The
// input is tokenized as HTML5 five times: as page text and as the inside of
// an unquoted, single-, double- and back-quoted attribute value (the places a
// request value may land in a page). It is XSS when any pass sees a doctype,
// a dangerous tag, an event-handler/xmlns/style/indirect attribute with a
// value, a URL attribute whose value starts with javascript:/vbscript:/data:/
// view-source: (after dropping leading whitespace, control and high bytes and
// decoding numeric entities), or a comment that IE treats as markup.

import * as h5 from './html5.js';
import { Html5Tokenizer, type Html5Context } from './html5.js';

// Local copies of the token kinds and contexts: they are compared once per
// token, and a module-local constant is the cheapest thing to compare with.
const ATTR_NAME = h5.ATTR_NAME;
const ATTR_VALUE = h5.ATTR_VALUE;
const DOCTYPE = h5.DOCTYPE;
const TAG_COMMENT = h5.TAG_COMMENT;
const TAG_NAME_OPEN = h5.TAG_NAME_OPEN;
const DATA_STATE = h5.DATA_STATE;
const VALUE_NO_QUOTE = h5.VALUE_NO_QUOTE;
const VALUE_SINGLE_QUOTE = h5.VALUE_SINGLE_QUOTE;
const VALUE_DOUBLE_QUOTE = h5.VALUE_DOUBLE_QUOTE;
const VALUE_BACK_QUOTE = h5.VALUE_BACK_QUOTE;

/** What an attribute's value means for XSS. */
const ATTR_NONE = 0;
/** Any value is XSS. */
const ATTR_BLACK = 1;
/** The value is a URL: XSS when its scheme is a script one. */
const ATTR_URL = 2;
/** Inline style: any value is XSS. */
const ATTR_STYLE = 3;
/** The value names another attribute (SVG `attributeName`). */
const ATTR_INDIRECT = 4;

/** Attribute names (upper case) by type, beyond `on*`, `xmlns*` and `xlink*`. */
const BLACK_ATTRS: ReadonlyArray<readonly [string, number]> = [
  ['ACTION', ATTR_URL], // form
  ['ATTRIBUTENAME', ATTR_INDIRECT], // SVG animation target
  ['BY', ATTR_URL], // SVG
  ['BACKGROUND', ATTR_URL], // IE6, Opera 11
  ['DATAFORMATAS', ATTR_BLACK], // IE
  ['DATASRC', ATTR_BLACK], // IE
  ['DYNSRC', ATTR_URL], // obsolete img
  ['FILTER', ATTR_STYLE], // Opera, SVG inline style
  ['FORMACTION', ATTR_URL],
  ['FOLDER', ATTR_URL], // IE, <a>
  ['FROM', ATTR_URL], // SVG
  ['HANDLER', ATTR_URL], // SVG Tiny, Opera
  ['HREF', ATTR_URL],
  ['LOWSRC', ATTR_URL], // obsolete img
  ['POSTER', ATTR_URL], // Opera 10, 11
  ['SRC', ATTR_URL],
  ['STYLE', ATTR_STYLE],
  ['TO', ATTR_URL], // SVG
  ['VALUES', ATTR_URL], // SVG
  // (xlink:href needs no entry: every xlink* name is already black.)
];

/** Tag names (upper case) that are XSS on their own; any `svg*` or `xsl*` tag is too. */
const BLACK_TAGS: readonly string[] = [
  'APPLET', 'BASE', 'COMMENT', 'EMBED', 'FRAME', 'FRAMESET', 'HANDLER', 'IFRAME', 'IMPORT', 'ISINDEX', 'LINK',
  'LISTENER', 'META', 'NOSCRIPT', 'OBJECT', 'SCRIPT', 'STYLE', 'VMLFRAME', 'XML', 'XSS',
];

/**
 * Names grouped by their first letter (A..Z at 0..25), so a name is only
 * compared with the few entries that can match it.
 */
function byFirstLetter<T>(entries: readonly T[], name: (e: T) => string): T[][] {
  const out: T[][] = Array.from({ length: 26 }, () => []);
  for (const e of entries) out[name(e).charCodeAt(0) - 0x41]!.push(e);
  return out;
}
const ATTRS_BY_LETTER = byFirstLetter(BLACK_ATTRS, (e) => e[0]);
const TAGS_BY_LETTER = byFirstLetter(BLACK_TAGS, (e) => e);

/** Index (0..25) of the first non-NUL byte of [start, end) as an ASCII letter, or -1. */
function firstLetter(s: string, start: number, end: number): number {
  for (let i = start; i < end; i++) {
    const c = s.charCodeAt(i);
    if (c === 0) continue;
    const l = (c | 0x20) - 0x61;
    return l >= 0 && l < 26 ? l : -1;
  }
  return -1;
}

/** URL schemes (prefixes, upper case) that run script; 'JAVA' covers javascript:. */
const BLACK_URL_PREFIXES: readonly string[] = ['DATA', 'VIEW-SOURCE', 'JAVA', 'VBSCRIPT'];

/**
 * Whether bytes [start, start+n) of `s`, with NUL bytes dropped and a-z
 * upper-cased, equal `upper`. Browsers ignored NULs in names, so `scr\0ipt`
 * is `script`.
 */
function equalsIgnoringNul(s: string, start: number, n: number, upper: string): boolean {
  const end = start + n;
  const want = upper.length;
  let j = 0;
  for (let i = start; i < end; i++) {
    let c = s.charCodeAt(i);
    if (c === 0) continue;
    if (j === want) return false;
    if (c >= 0x61 && c <= 0x7a) c -= 0x20;
    if (c !== upper.charCodeAt(j)) return false;
    j++;
  }
  return j === want;
}

function isBlackTag(s: string, start: number, len: number): boolean {
  if (len < 3) return false;
  const letter = firstLetter(s, start, start + len);
  if (letter >= 0) {
    const tags = TAGS_BY_LETTER[letter]!;
    for (let i = 0; i < tags.length; i++) {
      if (equalsIgnoringNul(s, start, len, tags[i]!)) return true;
    }
  }
  const c0 = s.charCodeAt(start) | 0x20;
  const c1 = s.charCodeAt(start + 1) | 0x20;
  const c2 = s.charCodeAt(start + 2) | 0x20;
  // `| 0x20` lower-cases letters and maps no other byte onto a letter.
  if (c0 === 0x73 && c1 === 0x76 && c2 === 0x67) return true; // svg*
  if (c0 === 0x78 && c1 === 0x73 && c2 === 0x6c) return true; // xsl*
  return false;
}

function blackAttrType(s: string, start: number, len: number): number {
  if (len < 2) return ATTR_NONE;
  if (len >= 5) {
    // Event handlers: any on* name of five or more bytes.
    if ((s.charCodeAt(start) | 0x20) === 0x6f && (s.charCodeAt(start + 1) | 0x20) === 0x6e) return ATTR_BLACK;
    // xmlns* can define arbitrary tags; xlink* carries URLs.
    if (equalsIgnoringNul(s, start, 5, 'XMLNS') || equalsIgnoringNul(s, start, 5, 'XLINK')) return ATTR_BLACK;
  }
  const letter = firstLetter(s, start, start + len);
  if (letter < 0) return ATTR_NONE;
  const attrs = ATTRS_BY_LETTER[letter]!;
  for (let i = 0; i < attrs.length; i++) {
    const e = attrs[i]!;
    if (equalsIgnoringNul(s, start, len, e[0])) return e[1];
  }
  return ATTR_NONE;
}

/** Bytes taken by the last decodeCharAt call. */
let consumed = 0;

function hexValue(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  const l = c | 0x20;
  if (l >= 0x61 && l <= 0x66) return l - 0x61 + 10;
  return -1;
}

/** Largest entity value decoded; bigger ones read as a plain '&'. */
const MAX_ENTITY = 0x1000ff;
const AMP = 0x26;

/**
 * Decodes one byte or numeric entity (`&#106;`, `&#x6a;`, the ';' optional)
 * at `at`, with `n` bytes left in the value. Named entities are not decoded:
 * they read as '&'.
 */
function decodeCharAt(s: string, at: number, n: number): number {
  consumed = 1;
  const c = s.charCodeAt(at);
  if (c !== AMP || n < 2) return c;
  if (s.charCodeAt(at + 1) !== 0x23) return AMP;
  const c2 = n > 2 ? s.charCodeAt(at + 2) : -1;
  if (c2 === 0x78 || c2 === 0x58) {
    let val = hexValue(n > 3 ? s.charCodeAt(at + 3) : -1);
    if (val < 0) return AMP;
    let i = 4;
    for (; i < n; i++) {
      const ch = s.charCodeAt(at + i);
      if (ch === 0x3b) {
        consumed = i + 1;
        return val;
      }
      const h = hexValue(ch);
      if (h < 0) break;
      val = val * 16 + h;
      if (val > MAX_ENTITY) return AMP;
    }
    consumed = i;
    return val;
  }
  if (c2 < 0x30 || c2 > 0x39) return AMP;
  let val = c2 - 0x30;
  let i = 3;
  for (; i < n; i++) {
    const ch = s.charCodeAt(at + i);
    if (ch === 0x3b) {
      consumed = i + 1;
      return val;
    }
    if (ch < 0x30 || ch > 0x39) break;
    val = val * 10 + (ch - 0x30);
    if (val > MAX_ENTITY) return AMP;
  }
  consumed = i;
  return val;
}

/**
 * Whether the entity-decoded value starts with `upper`, case-insensitively,
 * after leading whitespace/control chars, and ignoring NUL and newline
 * anywhere. A decoded char is compared by its low byte, as a C char is.
 */
function htmlDecodedStartsWith(upper: string, s: string, at: number, n: number): boolean {
  const want = upper.length;
  let j = 0;
  let leading = true;
  while (n > 0) {
    if (j === want) return true;
    let c = decodeCharAt(s, at, n);
    at += consumed;
    n -= consumed;
    if (leading && c <= 0x20) continue;
    leading = false;
    if (c === 0 || c === 0x0a) continue;
    if (c >= 0x61 && c <= 0x7a) c -= 0x20;
    if ((c & 0xff) !== upper.charCodeAt(j)) return false;
    j++;
  }
  return j === want;
}

function isBlackUrl(s: string, start: number, len: number): boolean {
  // Whitespace, controls, DEL and bytes >= 0x80 (browsers skip some UTF-8
  // spaces, EUC-JP lead bytes) before the scheme are dropped.
  while (len > 0) {
    const c = s.charCodeAt(start);
    if (c > 0x20 && c < 0x7f) break;
    start++;
    len--;
  }
  for (let i = 0; i < BLACK_URL_PREFIXES.length; i++) {
    if (htmlDecodedStartsWith(BLACK_URL_PREFIXES[i]!, s, start, len)) return true;
  }
  return false;
}

/**
 * Comments that old IE runs: `[if ...]`, `xml...`, `import...`,
 * `entity...` (backticks are checked by the caller).
 */
function isBlackComment(s: string, start: number, len: number): boolean {
  if (len > 3) {
    const c0 = s.charCodeAt(start);
    const c1 = s.charCodeAt(start + 1) | 0x20;
    const c2 = s.charCodeAt(start + 2) | 0x20;
    if (c0 === 0x5b && c1 === 0x69 && c2 === 0x66) return true; // [if
    if ((c0 | 0x20) === 0x78 && c1 === 0x6d && c2 === 0x6c) return true; // xml
  }
  if (len > 5) {
    if (equalsIgnoringNul(s, start, 6, 'IMPORT') || equalsIgnoringNul(s, start, 6, 'ENTITY')) return true;
  }
  return false;
}

const tokenizer = new Html5Tokenizer();

/** Runs the detector over `input` tokenized from one starting context. */
export function isXssInContext(input: string, context: Html5Context): boolean {
  const h = tokenizer;
  h.reset(input, context);
  let attr = ATTR_NONE;
  // Offset of the next backtick at or after the last comment (-1: none
  // left, -2: not looked yet). Kept across comments so that many comments
  // cost one scan of the input, not one each.
  let tick = -2;
  while (h.next()) {
    const type = h.tokenType;
    if (type === ATTR_VALUE) {
      switch (attr) {
        case ATTR_BLACK:
        case ATTR_STYLE:
          return true;
        case ATTR_URL:
          if (isBlackUrl(input, h.tokenStart, h.tokenLen)) return true;
          break;
        case ATTR_INDIRECT:
          if (blackAttrType(input, h.tokenStart, h.tokenLen) !== ATTR_NONE) return true;
          break;
      }
      attr = ATTR_NONE;
      continue;
    }
    // Only a value right after its name counts.
    attr = ATTR_NONE;
    switch (type) {
      case DOCTYPE:
        return true;
      case TAG_NAME_OPEN:
        if (isBlackTag(input, h.tokenStart, h.tokenLen)) return true;
        break;
      case ATTR_NAME:
        attr = blackAttrType(input, h.tokenStart, h.tokenLen);
        break;
      case TAG_COMMENT: {
        // IE ends tags at a backtick, so one inside a comment is markup.
        const start = h.tokenStart;
        if (tick !== -1 && tick < start) tick = input.indexOf('`', start);
        if (tick >= 0 && tick < start + h.tokenLen) return true;
        if (isBlackComment(input, start, h.tokenLen)) return true;
        break;
      }
    }
  }
  return false;
}

/**
 * libinjection's XSS test (`@detectXSS`) on a byte string (one char per
 * byte). True when the value would inject markup or script into an HTML page.
 */
export function detectXSS(input: string): boolean {
  // Every finding needs a tag ('<') or a name=value pair ('='); most values have neither.
  const hasLt = input.indexOf('<') >= 0;
  if (!hasLt && input.indexOf('=') < 0) return false;
  // Without '<' the page-text pass yields only text; without a given quote
  // the pass inside that quote yields one inert value.
  if (hasLt && isXssInContext(input, DATA_STATE)) return true;
  if (isXssInContext(input, VALUE_NO_QUOTE)) return true;
  if (input.indexOf("'") >= 0 && isXssInContext(input, VALUE_SINGLE_QUOTE)) return true;
  if (input.indexOf('"') >= 0 && isXssInContext(input, VALUE_DOUBLE_QUOTE)) return true;
  if (input.indexOf('`') >= 0 && isXssInContext(input, VALUE_BACK_QUOTE)) return true;
  return false;
}
