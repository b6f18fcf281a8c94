// Reading a request body ahead of the upstream (a filter that must see it
// first: the WAF) and handing the upstream the same bytes afterwards.
//
// readBodyPrefix() takes up to `limit` bytes from the request; ReplayBody
// then yields those bytes and continues with the rest of the request, so the
// upstream gets the body unchanged and still streamed. A client that goes away
// mid-body is seen the same way through both: the ReplayBody reports itself
// `aborted` and is destroyed, as the request would be.
import { Readable } from 'node:stream';
import type { Cancellation } from './cancel.js';

export interface BodyPrefix {
  /** The bytes read (at most `limit`, plus at most one chunk beyond it when the body is larger). */
  chunks: Buffer[];
  /** Bytes in `chunks`. */
  size: number;
  /** The whole body was read. */
  complete: boolean;
  /** The client went away before the body ended. */
  aborted: boolean;
}

const ignore = (): void => undefined;

/** The request body was cut short: the connection or stream went away before its end. */
export function bodyCut(src: Readable): boolean {
  return (src as { aborted?: boolean }).aborted === true || (src.destroyed && !src.readableEnded);
}

/**
 * Reads from `src` until the body ends or more than `limit` bytes arrived,
 * then pauses it (the rest stays in the request for ReplayBody).
 */
export function readBodyPrefix(src: Readable, limit: number, cancel: Cancellation): Promise<BodyPrefix> {
  return new Promise((resolve) => {
    const out: BodyPrefix = { chunks: [], size: 0, complete: false, aborted: false };
    if (src.readableEnded) {
      out.complete = true;
      resolve(out);
      return;
    }
    if (bodyCut(src)) {
      out.aborted = true;
      resolve(out);
      return;
    }
    let settled = false;
    const settle = (): void => {
      if (settled) return;
      settled = true;
      src.off('data', onData);
      src.off('end', onEnd);
      src.off('aborted', onAbort);
      src.off('error', onAbort);
      src.off('close', onClose);
      cancel.removeEventListener('abort', onAbort);
      if (!out.complete && !out.aborted) src.pause();
      resolve(out);
    };
    const onData = (chunk: Buffer): void => {
      out.chunks.push(chunk);
      out.size += chunk.length;
      if (out.size > limit) settle();
    };
    const onEnd = (): void => {
      if (bodyCut(src)) out.aborted = true;
      else out.complete = true;
      settle();
    };
    const onAbort = (): void => {
      out.aborted = true;
      settle();
    };
    const onClose = (): void => {
      if (!src.readableEnded) onAbort();
    };
    src.on('data', onData);
    src.once('end', onEnd);
    src.once('aborted', onAbort);
    src.once('error', onAbort);
    src.once('close', onClose);
    cancel.addEventListener('abort', onAbort);
    src.resume();
  });
}

/**
 * The request's whole body when it is already in memory, so a filter can read
 * it synchronously and leave the stream untouched: it came in the same read as
 * the head (H1Request.wholeBody) and no filter before this one replaced the
 * body's source. Undefined otherwise (read it with readBodyPrefix).
 */
export function wholeBody(ex: { readonly req: object; readonly bodySource: Readable | undefined }): Buffer | undefined {
  return ex.bodySource === undefined ? (ex.req as { wholeBody?: Buffer }).wholeBody : undefined;
}

/** The inspected bytes, then the rest of the request. */
export class ReplayBody extends Readable {
  aborted = false;
  complete = false;
  private attached = false;
  private prefix: Buffer[];

  constructor(
    prefix: BodyPrefix,
    private readonly src: Readable,
  ) {
    super({ highWaterMark: 64 * 1024 });
    // The error path of this stream's whole life: an abort must never be an unhandled 'error'.
    this.on('error', ignore);
    this.prefix = prefix.chunks;
    if (prefix.aborted) this.aborted = true;
    if (prefix.complete) this.complete = true;
  }

  private readonly onData = (chunk: Buffer): void => {
    if (!this.push(chunk)) this.src.pause();
  };
  private readonly onEnd = (): void => {
    if (bodyCut(this.src)) this.cut();
    else {
      this.complete = true;
      this.push(null);
    }
  };
  private readonly onAbort = (): void => this.cut();

  private cut(): void {
    if (this.aborted && this.destroyed) return;
    this.aborted = true;
    this.emit('aborted');
    const err = new Error('aborted') as NodeJS.ErrnoException;
    err.code = 'ECONNRESET';
    this.destroy(err);
  }

  override _read(): void {
    while (this.prefix.length > 0) {
      const c = this.prefix.shift()!;
      if (!this.push(c)) return;
    }
    if (this.complete) {
      this.push(null);
      return;
    }
    if (this.aborted) {
      this.cut();
      return;
    }
    if (!this.attached) {
      this.attached = true;
      if (this.src.readableEnded) {
        this.onEnd();
        return;
      }
      if (bodyCut(this.src)) {
        this.cut();
        return;
      }
      this.src.on('data', this.onData);
      this.src.once('end', this.onEnd);
      this.src.once('aborted', this.onAbort);
      this.src.once('error', this.onAbort);
    }
    this.src.resume();
  }

  override _destroy(err: Error | null, cb: (e?: Error | null) => void): void {
    this.src.off('data', this.onData);
    this.src.off('end', this.onEnd);
    this.src.off('aborted', this.onAbort);
    this.src.off('error', this.onAbort);
    cb(err);
  }
}

/**
 * Reads a whole request body into memory, up to `limit` bytes: the buffer,
 * 'too-large' (the rest is drained, not kept) or 'aborted' (the client went
 * away). `count` hears every chunk's size (the exchange's bytesIn).
 */
export function readWholeBody(src: Readable, limit: number, count?: (n: number) => void): Promise<Buffer | 'too-large' | 'aborted'> {
  if (src.readableEnded) return Promise.resolve(Buffer.alloc(0));
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const cleanup = (): void => {
      src.off('data', onData);
      src.off('end', onEnd);
      src.off('error', onError);
      src.off('aborted', onError);
    };
    const onData = (c: Buffer): void => {
      size += c.length;
      count?.(c.length);
      if (size > limit) {
        cleanup();
        src.resume();
        resolve('too-large');
        return;
      }
      chunks.push(c);
    };
    const onEnd = (): void => {
      cleanup();
      resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size));
    };
    const onError = (): void => {
      cleanup();
      resolve('aborted');
    };
    src.on('data', onData);
    src.once('end', onEnd);
    src.once('error', onError);
    src.once('aborted', onError);
  });
}
