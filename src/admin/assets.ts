// The web console's files: built at package time (bin/build-console.mjs) into
// dist/console/ (index.html and assets/ with content-hashed names), read from
// disk, kept in memory with their gzip form, and served by the admin server.
// Nothing is fetched from elsewhere at run time.
import { readFileSync, statSync } from 'node:fs';
import type http from 'node:http';
import { dirname, join, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';

const here = dirname(fileURLToPath(import.meta.url));
/** dist/src/admin -> dist/console when built; src/admin -> dist/console when run from the sources. */
export const CONSOLE_DIR = here.includes(`${sep}dist${sep}src${sep}`) ? join(here, '..', '..', 'console') : join(here, '..', '..', 'dist', 'console');

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.json': 'application/json',
  '.map': 'application/json',
};

interface Cached {
  mtimeMs: number;
  raw: Buffer;
  gz: Buffer | undefined;
}
const cache = new Map<string, Cached>();

function load(file: string): Cached | undefined {
  let mtimeMs: number;
  try {
    const st = statSync(file);
    if (!st.isFile()) return undefined;
    mtimeMs = st.mtimeMs;
  } catch {
    return undefined;
  }
  const hit = cache.get(file);
  if (hit && hit.mtimeMs === mtimeMs) return hit;
  const raw = readFileSync(file);
  const gz = raw.length > 1024 && !file.endsWith('.png') ? gzipSync(raw) : undefined;
  const c = { mtimeMs, raw, gz };
  cache.set(file, c);
  return c;
}

const NOT_BUILT = `<!doctype html><meta charset="utf-8"><title>meshgate</title>
<p>The web console is not built. Run <code>npm run build</code> (it needs the dev dependencies), or install a packed meshgate, which ships it.
The admin API answers under <a href="/api/overview">/api/</a>.</p>`;

/** Serves `/` and `/assets/<name>`; false for any other path (the API's). */
export function serveAsset(req: http.IncomingMessage, res: http.ServerResponse, path: string): boolean {
  let file: string;
  let immutable = false;
  if (path === '/' || path === '/index.html') file = join(CONSOLE_DIR, 'index.html');
  else if (path.startsWith('/assets/') && /^[A-Za-z0-9._-]+$/.test(path.slice(8)) && !path.includes('..')) {
    file = join(CONSOLE_DIR, 'assets', path.slice(8));
    immutable = true;
  } else return false;
  const c = load(file);
  if (!c) {
    if (immutable) {
      res.writeHead(404, { 'content-type': 'text/plain' });
      res.end('no such console asset\n');
    } else {
      res.writeHead(503, { 'content-type': 'text/html; charset=utf-8' });
      res.end(NOT_BUILT);
    }
    return true;
  }
  const ext = file.slice(file.lastIndexOf('.'));
  const gzip = c.gz !== undefined && /\bgzip\b/.test(String(req.headers['accept-encoding'] ?? ''));
  const body = gzip ? c.gz! : c.raw;
  res.writeHead(200, {
    'content-type': TYPES[ext] ?? 'application/octet-stream',
    'content-length': body.length,
    // Asset names carry a hash of their content; the page itself is checked on every load.
    'cache-control': immutable ? 'public, max-age=31536000, immutable' : 'no-cache',
    'x-content-type-options': 'nosniff',
    ...(immutable ? {} : { 'content-security-policy': "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; frame-ancestors 'none'" }),
    ...(gzip ? { 'content-encoding': 'gzip' } : {}),
    vary: 'accept-encoding',
  });
  res.end(req.method === 'HEAD' ? undefined : body);
  return true;
}
