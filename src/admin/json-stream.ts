// Large JSON answers without holding the event loop: the admin API shares its
// process with the proxy, and one JSON.stringify of every service at 10,000
// services and 100,000 endpoints takes 150-400 ms (BENCHMARKS.md, endpoints at
// scale), during which no request moves. writeJsonArray describes and writes
// an array a slice at a time, yielding between slices and waiting for the
// socket to drain. The text is what JSON.stringify(items, null, 2) gives.
// writeJson does the same for any value whose large parts are arrays (the
// workers' merged views), and describeInParts hands a worker's view to the
// primary a slice at a time.

/** What writeJsonArray needs of an http.ServerResponse. */
export interface JsonSink {
  readonly destroyed: boolean;
  writeHead(status: number, headers: Record<string, string>): unknown;
  write(chunk: string): boolean;
  end(chunk?: string): unknown;
  once(event: 'drain' | 'close', fn: () => void): unknown;
  off(event: 'drain' | 'close', fn: () => void): unknown;
}

/** Characters written per slice before the next one waits for a turn of the event loop. */
export const SLICE_CHARS = 64 * 1024;

/**
 * Writes `[describe(keys[0]), describe(keys[1]), ...]` as indented JSON (the
 * same text JSON.stringify(array, null, 2) would give), a slice of about
 * SLICE_CHARS at a time, each item described when its slice is built. Stops
 * when the client goes away. Resolves once the answer is written or abandoned.
 */
export function writeJsonArray<K>(res: JsonSink, status: number, keys: readonly K[], describe: (key: K) => unknown, sliceChars = SLICE_CHARS, headers: Record<string, string> = {}): Promise<void> {
  return writePieces(res, status, arrayPieces(keys, describe), sliceChars, headers);
}

/** The pieces of `[describe(keys[0]), ...]` as JSON.stringify(array, null, 2) writes it, each item described when it is reached. */
function* arrayPieces<K>(keys: readonly K[], describe: (key: K) => unknown): Generator<string> {
  if (keys.length === 0) return void (yield '[]');
  yield '[\n';
  for (let i = 0; i < keys.length; i++) {
    yield '  ';
    yield* jsonPieces(describe(keys[i]!), 0, '  ');
    yield i === keys.length - 1 ? '\n]' : ',\n';
  }
}

/**
 * The one write loop of this file: pieces gathered into slices of about
 * `sliceChars`, a turn of the event loop (or the socket's drain) between
 * slices; stops when the client goes away.
 */
async function writePieces(res: JsonSink, status: number, pieces: Iterable<string>, sliceChars: number, headers: Record<string, string>): Promise<void> {
  res.writeHead(status, { ...headers, 'content-type': 'application/json', 'cache-control': 'no-store' });
  let out = '';
  for (const piece of pieces) {
    out += piece;
    if (out.length < sliceChars) continue;
    if (res.destroyed) return;
    const more = res.write(out);
    out = '';
    await (more ? new Promise<void>((r) => setImmediate(r)) : drained(res));
    if (res.destroyed) return;
  }
  res.end(out);
}

/** Resolves when the socket drains or the client goes; the other listener is removed, so waits do not pile up on the response. */
function drained(res: JsonSink): Promise<void> {
  return new Promise<void>((r) => {
    const done = (): void => {
      res.off('drain', done);
      res.off('close', done);
      r();
    };
    res.once('drain', done);
    res.once('close', done);
  });
}

/**
 * The text of JSON.stringify(value, null, 2), in pieces: arrays and objects
 * down to `expand` levels are walked member by member, deeper values are
 * stringified whole (each then one piece).
 */
export function* jsonPieces(value: unknown, expand: number, indent = ''): Generator<string> {
  if (value !== null && typeof value === 'object' && typeof (value as { toJSON?: unknown }).toJSON === 'function') value = (value as { toJSON(): unknown }).toJSON();
  if (expand <= 0 || value === null || typeof value !== 'object') {
    const text = JSON.stringify(value, null, 2);
    yield text === undefined ? 'null' : indent ? text.replace(/\n/g, `\n${indent}`) : text;
    return;
  }
  const inner = `${indent}  `;
  if (Array.isArray(value)) {
    if (value.length === 0) return void (yield '[]');
    yield '[\n';
    for (let i = 0; i < value.length; i++) {
      yield inner;
      yield* jsonPieces(value[i], expand - 1, inner);
      yield i === value.length - 1 ? `\n${indent}]` : ',\n';
    }
    return;
  }
  // Members JSON.stringify leaves out: undefined, functions, symbols.
  const keys = Object.keys(value).filter((k) => {
    const v = (value as Record<string, unknown>)[k];
    return v !== undefined && typeof v !== 'function' && typeof v !== 'symbol';
  });
  if (keys.length === 0) return void (yield '{}');
  yield '{\n';
  for (let i = 0; i < keys.length; i++) {
    yield `${inner}${JSON.stringify(keys[i])}: `;
    yield* jsonPieces((value as Record<string, unknown>)[keys[i]!], expand - 1, inner);
    yield i === keys.length - 1 ? `\n${indent}}` : ',\n';
  }
}

/**
 * Writes `value` as JSON.stringify(value, null, 2) would, a slice of about
 * SLICE_CHARS at a time (see jsonPieces for `expand`), yielding between slices
 * and waiting for the socket to drain. Resolves once written or abandoned.
 */
export function writeJson(res: JsonSink, status: number, value: unknown, expand: number, sliceChars = SLICE_CHARS, headers: Record<string, string> = {}): Promise<void> {
  return writePieces(res, status, jsonPieces(value, expand), sliceChars, headers);
}

/** Items per part of describeInParts at most: a bounded message. */
export const PART_ITEMS = 200;

/**
 * Describes `keys` a part at a time: a part holds the items described within
 * `budgetMs` (at least one, at most `maxItems`), and `emit` is awaited before
 * the next part is begun, one event-loop turn later. The last part is
 * emitted with `last` true (an empty list has one empty last part).
 */
export async function describeInParts<K>(
  keys: readonly K[],
  describe: (key: K) => unknown,
  emit: (items: unknown[], last: boolean) => Promise<void> | void,
  budgetMs = 4,
  maxItems = PART_ITEMS,
): Promise<void> {
  let i = 0;
  for (;;) {
    const items: unknown[] = [];
    const start = performance.now();
    while (i < keys.length && items.length < maxItems && (items.length === 0 || performance.now() - start < budgetMs)) items.push(describe(keys[i++]!));
    const last = i >= keys.length;
    await emit(items, last);
    if (last) return;
    await new Promise<void>((r) => setImmediate(r));
  }
}
