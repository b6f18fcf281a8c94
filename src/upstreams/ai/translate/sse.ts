// Server-sent events parser (WHATWG HTML "event stream interpretation").
// Upstream bytes arrive cut anywhere: inside a UTF-8 sequence, inside a line,
// or between the \r and \n of a CRLF. The parser therefore keeps undecoded
// bytes and an unfinished line across pushes, and remembers a trailing \r so a
// \n at the start of the next push is not read as a second (empty) line —
// which would end the event early.

export interface SseEvent {
  event: string | undefined;
  data: string;
}

/** Default limit on one line: far above any real event (a whole tool call's JSON, a base64 image). */
export const SSE_MAX_LINE = 16 * 1024 * 1024;

export class SseParser {
  private readonly decoder = new TextDecoder('utf-8');
  private readonly maxLine: number;
  /** Characters of an over-long line are being skipped until its line end. */
  private skipping = false;
  /**
   * Lines dropped for exceeding the limit (an upstream that never ends a line
   * would otherwise grow memory without bound). The event the line belonged
   * to is dropped too. Never thrown: callers read it after push.
   */
  overlong = 0;
  /** Text of the line being read (no line end yet). */
  private line = '';
  /** The previous push ended on \r: a leading \n now belongs to that line end. */
  private afterCR = false;
  /** The stream's first characters have not been seen: a BOM there is dropped. */
  private atStart = true;
  private dataLines: string[] = [];
  private hasData = false;
  private eventName: string | undefined;
  /** The current event lost a line to the length limit: it is not dispatched. */
  private discardEvent = false;

  constructor(opts: { maxLine?: number } = {}) {
    this.maxLine = opts.maxLine ?? SSE_MAX_LINE;
  }

  push(bytes: Buffer): SseEvent[] {
    return this.feed(this.decoder.decode(bytes, { stream: true }));
  }

  /**
   * The stream ended. The spec discards an event that lacks its closing blank
   * line; some providers close right after the last `data:` line, and dropping
   * that frame would lose the finish reason or usage. So an event whose lines
   * all ended is still dispatched. A last line without its line end may be a
   * cut-off fragment, and is dropped.
   */
  end(): SseEvent[] {
    const out = this.feed(this.decoder.decode());
    this.line = '';
    this.afterCR = false;
    this.skipping = false;
    if (this.hasData && !this.discardEvent) out.push({ event: this.eventName, data: this.dataLines.join('\n') });
    this.dataLines = [];
    this.hasData = false;
    this.eventName = undefined;
    this.discardEvent = false;
    return out;
  }

  private feed(text: string): SseEvent[] {
    const out: SseEvent[] = [];
    if (text.length === 0) return out;
    let i = 0;
    if (this.atStart) {
      this.atStart = false;
      if (text.charCodeAt(0) === 0xfeff) i = 1;
    }
    if (this.afterCR) {
      this.afterCR = false;
      if (text.charCodeAt(i) === 10) i++;
    }
    let start = i;
    const n = text.length;
    while (i < n) {
      const c = text.charCodeAt(i);
      if (c !== 10 && c !== 13) {
        i++;
        continue;
      }
      if (!this.skipping && this.line.length + (i - start) > this.maxLine) {
        this.line = '';
        this.skipping = true;
        this.overlong++;
      }
      if (this.skipping) {
        // The end of an over-long line: it and its event are gone.
        this.skipping = false;
        this.dataLines = [];
        this.hasData = false;
        this.eventName = undefined;
        this.discardEvent = true;
      } else {
        const piece = text.slice(start, i);
        const full = this.line.length > 0 ? this.line + piece : piece;
        this.line = '';
        this.processLine(full, out);
      }
      if (c === 13) {
        if (i + 1 < n) {
          if (text.charCodeAt(i + 1) === 10) i++;
        } else {
          this.afterCR = true;
        }
      }
      i++;
      start = i;
    }
    if (start < n && !this.skipping) {
      this.line += text.slice(start);
      if (this.line.length > this.maxLine) {
        this.line = '';
        this.skipping = true;
        this.overlong++;
      }
    }
    return out;
  }

  private processLine(line: string, out: SseEvent[]): void {
    if (line.length === 0) {
      if (this.discardEvent) this.discardEvent = false;
      else if (this.hasData) {
        out.push({ event: this.eventName, data: this.dataLines.join('\n') });
      }
      this.dataLines = [];
      this.hasData = false;
      this.eventName = undefined;
      return;
    }
    if (line.charCodeAt(0) === 58 /* ':' comment */) return;
    const colon = line.indexOf(':');
    let field: string;
    let value: string;
    if (colon < 0) {
      field = line;
      value = '';
    } else {
      field = line.slice(0, colon);
      value = line.charCodeAt(colon + 1) === 32 ? line.slice(colon + 2) : line.slice(colon + 1);
    }
    switch (field) {
      case 'data':
        this.dataLines.push(value);
        this.hasData = true;
        break;
      case 'event':
        // An empty name means the default type ("message"), like no name.
        this.eventName = value.length > 0 ? value : undefined;
        break;
      // id and retry matter only to a reconnecting browser; unknown fields are ignored per spec.
      default:
        break;
    }
  }
}
