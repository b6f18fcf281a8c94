// Large JSON answers without holding the event loop: the admin API shares its
// process with the proxy, and one JSON.stringify of every service at 10,000
// services and 100,000 endpoints takes 150-400 ms (BENCHMARKS.md, endpoints at
// scale), during which no request moves. writeJsonArray describes and writes
// an array a slice at a time, yielding between slices and waiting for the
// socket to drain. The text is what JSON.stringify(items, null, 2) gives.

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
export async function writeJsonArray<K>(res: JsonSink, status: number, keys: readonly K[], describe: (key: K) => unknown, sliceChars = SLICE_CHARS): Promise<void> {
  res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' });
  if (keys.length === 0) {
    res.end('[]');
    return;
  }
  let out = '[\n';
  for (let i = 0; i < keys.length; i++) {
    const text = JSON.stringify(describe(keys[i]!), null, 2);
    out += `  ${text === undefined ? 'null' : text.replace(/\n/g, '\n  ')}${i === keys.length - 1 ? '\n]' : ',\n'}`;
    if (out.length < sliceChars && i !== keys.length - 1) continue;
    if (res.destroyed) return;
    const more = res.write(out);
    out = '';
    if (i === keys.length - 1) break;
    await (more ? new Promise<void>((r) => setImmediate(r)) : drained(res));
    if (res.destroyed) return;
  }
  res.end();
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
