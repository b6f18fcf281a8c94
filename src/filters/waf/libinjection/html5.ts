// HTML5 tokenizer used by the XSS detector (`@detectXSS`).
//
// Behaviour follows libinjection's html5 tokenizer (libinjection 3.9.2 by
// Nick Galbreath, BSD-3-Clause, https://github.com/client9/libinjection), the
// version ModSecurity v3 builds in: a simplified WHATWG tokenizer that can
// start in the data state or inside an attribute value, and that keeps the
// reference's quirks on purpose (NUL counts as whitespace, byte 0xFF reads as
// end of input where whitespace is skipped, `</>` leaves the end-tag flag
// set), because a WAF rule must flag exactly what ModSecurity flags.
//
// Input is a byte string (one char per byte). Tokens are offsets into it; no
// substrings are made.

/** Where tokenizing starts: as page text, or inside an attribute value. */
export const DATA_STATE = 0;
export const VALUE_NO_QUOTE = 1;
export const VALUE_SINGLE_QUOTE = 2;
export const VALUE_DOUBLE_QUOTE = 3;
export const VALUE_BACK_QUOTE = 4;
export type Html5Context = 0 | 1 | 2 | 3 | 4;

/** Token kinds. */
export const DATA_TEXT = 0;
export const TAG_NAME_OPEN = 1;
export const TAG_NAME_CLOSE = 2;
export const TAG_NAME_SELFCLOSE = 3;
export const TAG_CLOSE = 5;
export const ATTR_NAME = 6;
export const ATTR_VALUE = 7;
export const TAG_COMMENT = 8;
export const DOCTYPE = 9;
export type Html5TokenType = 0 | 1 | 2 | 3 | 5 | 6 | 7 | 8 | 9;

// Tokenizer states (what runs on the next call).
const S_EOF = 0;
const S_DATA = 1;
const S_TAG_OPEN = 2;
const S_TAG_NAME_CLOSE = 3;
const S_BEFORE_ATTR_NAME = 4;
const S_AFTER_ATTR_NAME = 5;
const S_BEFORE_ATTR_VALUE = 6;
const S_VALUE_DOUBLE = 7;
const S_VALUE_SINGLE = 8;
const S_VALUE_BACK = 9;
const S_AFTER_VALUE_QUOTED = 10;
const S_SELF_CLOSING = 11;

const GT = 0x3e;
const SLASH = 0x2f;
const BANG = 0x21;
const QUESTION = 0x3f;
const PERCENT = 0x25;
const EQUALS = 0x3d;
const DASH = 0x2d;
const DQUOTE = 0x22;
const SQUOTE = 0x27;
const TICK = 0x60;
const RBRACKET = 0x5d;
const DOCTYPE_WORD = 'doctype';

/** Returned by skipWhite at the end of input. */
const END = -1;

/** Space, \t \n \v \f \r, and NUL (the reference's whitespace test also accepts the NUL byte). */
function isWhite(c: number): boolean {
  return c === 0x20 || (c >= 0x09 && c <= 0x0d) || c === 0;
}

function isAsciiLetter(c: number): boolean {
  return (c >= 0x61 && c <= 0x7a) || (c >= 0x41 && c <= 0x5a);
}

export class Html5Tokenizer {
  /** The byte string being tokenized. */
  s = '';
  len = 0;
  pos = 0;
  /** Start offset of the current token in `s`. */
  tokenStart = 0;
  tokenLen = 0;
  tokenType: Html5TokenType = DATA_TEXT;
  private state = S_EOF;
  private isClose = false;

  /** Starts tokenizing `s` in the given context. Reusing one instance avoids allocation. */
  reset(s: string, context: Html5Context): void {
    this.s = s;
    this.len = s.length;
    this.pos = 0;
    this.tokenStart = 0;
    this.tokenLen = 0;
    this.tokenType = DATA_TEXT;
    this.isClose = false;
    switch (context) {
      case DATA_STATE: this.state = S_DATA; break;
      // An unquoted value context begins where the next attribute name may start.
      case VALUE_NO_QUOTE: this.state = S_BEFORE_ATTR_NAME; break;
      case VALUE_SINGLE_QUOTE: this.state = S_VALUE_SINGLE; break;
      case VALUE_DOUBLE_QUOTE: this.state = S_VALUE_DOUBLE; break;
      case VALUE_BACK_QUOTE: this.state = S_VALUE_BACK; break;
    }
  }

  /** Advances to the next token; false when there is none. */
  next(): boolean {
    switch (this.state) {
      case S_DATA: return this.data();
      case S_TAG_OPEN: return this.tagOpen();
      case S_TAG_NAME_CLOSE: return this.tagNameClose();
      case S_BEFORE_ATTR_NAME: return this.beforeAttrName();
      case S_AFTER_ATTR_NAME: return this.afterAttrName();
      case S_BEFORE_ATTR_VALUE: return this.beforeAttrValue();
      case S_VALUE_DOUBLE: return this.quotedValue(DQUOTE);
      case S_VALUE_SINGLE: return this.quotedValue(SQUOTE);
      case S_VALUE_BACK: return this.quotedValue(TICK);
      case S_AFTER_VALUE_QUOTED: return this.afterValueQuoted();
      case S_SELF_CLOSING: return this.selfClosing();
      default: return false;
    }
  }

  private emit(type: Html5TokenType, start: number, len: number, state: number): true {
    this.tokenType = type;
    this.tokenStart = start;
    this.tokenLen = len;
    this.state = state;
    return true;
  }

  private stop(): false {
    this.state = S_EOF;
    return false;
  }

  /**
   * Skips whitespace (NUL included) and returns the byte found, or END.
   * The reference reads bytes as signed chars here, so 0xFF equals its
   * end-of-input marker: keep that, it ends tokenizing just like the end.
   */
  private skipWhite(): number {
    const s = this.s;
    const len = this.len;
    let pos = this.pos;
    while (pos < len) {
      const c = s.charCodeAt(pos);
      if (c === 0x20 || (c >= 0x09 && c <= 0x0d) || c === 0) {
        pos++;
        continue;
      }
      this.pos = pos;
      return c === 0xff ? END : c;
    }
    this.pos = pos;
    return END;
  }

  private data(): boolean {
    const start = this.pos;
    const lt = this.s.indexOf('<', start);
    if (lt < 0) {
      if (this.len === start) return this.stop();
      return this.emit(DATA_TEXT, start, this.len - start, S_EOF);
    }
    this.pos = lt + 1;
    if (lt === start) return this.tagOpen();
    return this.emit(DATA_TEXT, start, lt - start, S_TAG_OPEN);
  }

  /** Just after '<'. */
  private tagOpen(): boolean {
    const pos = this.pos;
    if (pos >= this.len) return this.stop();
    const c = this.s.charCodeAt(pos);
    if (c === BANG) {
      this.pos = pos + 1;
      return this.markupDeclarationOpen();
    }
    if (c === SLASH) {
      this.pos = pos + 1;
      this.isClose = true;
      return this.endTagOpen();
    }
    if (c === QUESTION) {
      this.pos = pos + 1;
      return this.bogusComment();
    }
    if (c === PERCENT) {
      // Not in the spec: `<% ... %>` comments (old IE and Safari).
      this.pos = pos + 1;
      return this.percentComment();
    }
    // Old browsers ignore NUL inside tag names, so a NUL may start one.
    if (isAsciiLetter(c) || c === 0) return this.tagName();
    // A lone '<' is text; the text scan resumes at the byte after it.
    return this.emit(DATA_TEXT, pos - 1, 1, S_DATA);
  }

  /** Just after '</'. */
  private endTagOpen(): boolean {
    const pos = this.pos;
    if (pos >= this.len) return this.stop();
    const c = this.s.charCodeAt(pos);
    // `</>`: the '>' is read as text and the end-tag flag stays set.
    if (c === GT) return this.data();
    if (isAsciiLetter(c)) return this.tagName();
    this.isClose = false;
    return this.bogusComment();
  }

  private tagNameClose(): boolean {
    this.isClose = false;
    const pos = this.pos;
    this.pos = pos + 1;
    return this.emit(TAG_NAME_CLOSE, pos, 1, this.pos < this.len ? S_DATA : S_EOF);
  }

  private tagName(): boolean {
    const s = this.s;
    const len = this.len;
    const start = this.pos;
    for (let pos = start; pos < len; pos++) {
      const c = s.charCodeAt(pos);
      if (c === 0) continue; // NULs stay inside the name
      if (isWhite(c)) {
        this.pos = pos + 1;
        return this.emit(TAG_NAME_OPEN, start, pos - start, S_BEFORE_ATTR_NAME);
      }
      if (c === SLASH) {
        this.pos = pos + 1;
        return this.emit(TAG_NAME_OPEN, start, pos - start, S_SELF_CLOSING);
      }
      if (c === GT) {
        if (this.isClose) {
          this.isClose = false;
          this.pos = pos + 1;
          return this.emit(TAG_CLOSE, start, pos - start, S_DATA);
        }
        this.pos = pos;
        return this.emit(TAG_NAME_OPEN, start, pos - start, S_TAG_NAME_CLOSE);
      }
    }
    return this.emit(TAG_NAME_OPEN, start, len - start, S_EOF);
  }

  private beforeAttrName(): boolean {
    const c = this.skipWhite();
    if (c === END) return this.stop();
    if (c === SLASH) {
      this.pos++;
      return this.selfClosing();
    }
    if (c === GT) {
      // Unlike the close after a tag name, this one keeps the end-tag flag.
      const pos = this.pos;
      this.pos = pos + 1;
      return this.emit(TAG_NAME_CLOSE, pos, 1, S_DATA);
    }
    return this.attrName();
  }

  private attrName(): boolean {
    const s = this.s;
    const len = this.len;
    const start = this.pos;
    // The first byte always belongs to the name, even '=' or a quote.
    for (let pos = start + 1; pos < len; pos++) {
      const c = s.charCodeAt(pos);
      if (isWhite(c)) {
        this.pos = pos + 1;
        return this.emit(ATTR_NAME, start, pos - start, S_AFTER_ATTR_NAME);
      }
      if (c === SLASH) {
        this.pos = pos + 1;
        return this.emit(ATTR_NAME, start, pos - start, S_SELF_CLOSING);
      }
      if (c === EQUALS) {
        this.pos = pos + 1;
        return this.emit(ATTR_NAME, start, pos - start, S_BEFORE_ATTR_VALUE);
      }
      if (c === GT) {
        this.pos = pos;
        return this.emit(ATTR_NAME, start, pos - start, S_TAG_NAME_CLOSE);
      }
    }
    this.pos = len;
    return this.emit(ATTR_NAME, start, len - start, S_EOF);
  }

  private afterAttrName(): boolean {
    const c = this.skipWhite();
    if (c === END) return this.stop();
    if (c === SLASH) {
      this.pos++;
      return this.selfClosing();
    }
    if (c === EQUALS) {
      this.pos++;
      return this.beforeAttrValue();
    }
    if (c === GT) return this.tagNameClose();
    return this.attrName();
  }

  private beforeAttrValue(): boolean {
    const c = this.skipWhite();
    if (c === END) return this.stop();
    if (c === DQUOTE) return this.quotedValue(DQUOTE);
    if (c === SQUOTE) return this.quotedValue(SQUOTE);
    if (c === TICK) return this.quotedValue(TICK); // IE quotes with backticks
    return this.unquotedValue();
  }

  private quotedValue(quote: number): boolean {
    // At offset 0 the input starts inside the value (no opening quote to skip).
    if (this.pos > 0) this.pos++;
    const start = this.pos;
    const end = this.s.indexOf(String.fromCharCode(quote), start);
    if (end < 0) return this.emit(ATTR_VALUE, start, this.len - start, S_EOF);
    this.pos = end + 1;
    return this.emit(ATTR_VALUE, start, end - start, S_AFTER_VALUE_QUOTED);
  }

  private unquotedValue(): boolean {
    const s = this.s;
    const len = this.len;
    const start = this.pos;
    for (let pos = start; pos < len; pos++) {
      const c = s.charCodeAt(pos);
      if (isWhite(c)) {
        this.pos = pos + 1;
        return this.emit(ATTR_VALUE, start, pos - start, S_BEFORE_ATTR_NAME);
      }
      if (c === GT) {
        this.pos = pos;
        return this.emit(ATTR_VALUE, start, pos - start, S_TAG_NAME_CLOSE);
      }
    }
    return this.emit(ATTR_VALUE, start, len - start, S_EOF);
  }

  private afterValueQuoted(): boolean {
    const pos = this.pos;
    if (pos >= this.len) return this.stop();
    const c = this.s.charCodeAt(pos);
    if (isWhite(c)) {
      this.pos = pos + 1;
      return this.beforeAttrName();
    }
    if (c === SLASH) {
      this.pos = pos + 1;
      return this.selfClosing();
    }
    if (c === GT) {
      this.pos = pos + 1;
      return this.emit(TAG_NAME_CLOSE, pos, 1, S_DATA);
    }
    return this.beforeAttrName();
  }

  private selfClosing(): boolean {
    const pos = this.pos;
    if (pos >= this.len) return this.stop();
    if (this.s.charCodeAt(pos) === GT) {
      this.pos = pos + 1;
      return this.emit(TAG_NAME_SELFCLOSE, pos - 1, 2, S_DATA);
    }
    return this.beforeAttrName();
  }

  /** `<?...>` and other malformed markup: a comment up to the next '>'. */
  private bogusComment(): boolean {
    const start = this.pos;
    const gt = this.s.indexOf('>', start);
    if (gt < 0) {
      this.pos = this.len;
      return this.emit(TAG_COMMENT, start, this.len - start, S_EOF);
    }
    this.pos = gt + 1;
    return this.emit(TAG_COMMENT, start, gt - start, S_DATA);
  }

  /** `<% ... %>`. */
  private percentComment(): boolean {
    const s = this.s;
    const len = this.len;
    const start = this.pos;
    let from = start;
    for (;;) {
      const pct = s.indexOf('%', from);
      if (pct < 0 || pct + 1 >= len) {
        this.pos = len;
        return this.emit(TAG_COMMENT, start, len - start, S_EOF);
      }
      if (s.charCodeAt(pct + 1) === GT) {
        this.pos = pct + 2;
        return this.emit(TAG_COMMENT, start, pct - start, S_DATA);
      }
      from = pct + 1;
    }
  }

  /** Just after '<!'. */
  private markupDeclarationOpen(): boolean {
    const s = this.s;
    const pos = this.pos;
    const remaining = this.len - pos;
    if (remaining >= 7) {
      // "DOCTYPE" in any case; "[CDATA[" only in upper case.
      let i = 0;
      // `| 0x20` lower-cases a letter and maps no other byte onto one.
      while (i < 7 && (s.charCodeAt(pos + i) | 0x20) === DOCTYPE_WORD.charCodeAt(i)) i++;
      if (i === 7) return this.doctype();
      if (s.startsWith('[CDATA[', pos)) {
        this.pos = pos + 7;
        return this.cdata();
      }
    }
    if (remaining >= 2 && s.charCodeAt(pos) === DASH && s.charCodeAt(pos + 1) === DASH) {
      this.pos = pos + 2;
      return this.comment();
    }
    return this.bogusComment();
  }

  /**
   * `<!-- ... -->`: ends at `-->` or `--!>` (NULs between the first two
   * bytes are ignored) or at the end of input.
   */
  private comment(): boolean {
    const s = this.s;
    const len = this.len;
    const start = this.pos;
    let from = start;
    for (;;) {
      const dash = s.indexOf('-', from);
      if (dash < 0 || dash > len - 3) break;
      let at = dash + 1;
      while (at < len && s.charCodeAt(at) === 0) at++;
      if (at === len) break;
      const c = s.charCodeAt(at);
      if (c !== DASH && c !== BANG) {
        from = dash + 1;
        continue;
      }
      at++;
      if (at === len) break;
      if (s.charCodeAt(at) !== GT) {
        from = dash + 1;
        continue;
      }
      this.pos = at + 1;
      return this.emit(TAG_COMMENT, start, dash - start, S_DATA);
    }
    return this.emit(TAG_COMMENT, start, len - start, S_EOF);
  }

  /** `<![CDATA[ ... ]]>` is text. */
  private cdata(): boolean {
    const s = this.s;
    const len = this.len;
    const start = this.pos;
    let from = start;
    for (;;) {
      const rb = s.indexOf(']', from);
      if (rb < 0 || rb > len - 3) return this.emit(DATA_TEXT, start, len - start, S_EOF);
      if (s.charCodeAt(rb + 1) === RBRACKET && s.charCodeAt(rb + 2) === GT) {
        this.pos = rb + 3;
        return this.emit(DATA_TEXT, start, rb - start, S_DATA);
      }
      from = rb + 1;
    }
  }

  private doctype(): boolean {
    const start = this.pos;
    const gt = this.s.indexOf('>', start);
    if (gt < 0) return this.emit(DOCTYPE, start, this.len - start, S_EOF);
    this.pos = gt + 1;
    return this.emit(DOCTYPE, start, gt - start, S_DATA);
  }
}
