// The HTTP plumbing the native-protocol LLM doubles (anthropic.ts, gemini.ts,
// ollama.ts) share: a server on 127.0.0.1 at a free port that records every
// request it receives, answers from a per-test script queue, and can write a
// stream in pieces (with pauses) or cut the connection mid-way.
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

export type Json = Record<string, any>;

export interface Received {
  method: string;
  /** Path with query, as received. */
  url: string;
  path: string;
  query: URLSearchParams;
  headers: http.IncomingHttpHeaders;
  /** The parsed JSON body (undefined when absent or not JSON). */
  body: Json | undefined;
}

/** One streamed answer: pieces are written in order with a flush between them; `cut` destroys the socket after the last one. */
export interface StreamPlan {
  status?: number;
  contentType: string;
  pieces: Array<string | { pauseMs: number }>;
  cut?: boolean;
}

export interface BaseServer {
  port: number;
  received: Received[];
  /** Streams whose client went away before the double finished writing. */
  closedEarly: number;
  stop(): Promise<void>;
}

export function sendJson(res: http.ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(text)), ...headers });
  res.end(text);
}

export async function writeStream(res: http.ServerResponse, plan: StreamPlan, server: BaseServer): Promise<void> {
  res.writeHead(plan.status ?? 200, { 'content-type': plan.contentType, 'cache-control': 'no-cache' });
  res.flushHeaders();
  for (const p of plan.pieces) {
    if (res.destroyed || res.writableEnded) {
      server.closedEarly++;
      return;
    }
    if (typeof p === 'string') res.write(p);
    else await new Promise((r) => setTimeout(r, p.pauseMs));
  }
  if (plan.cut) {
    // Let the written bytes leave before the reset.
    await new Promise((r) => setTimeout(r, 20));
    res.socket?.destroy();
    return;
  }
  res.end();
}

/** Cuts `text` into about n pieces (at least one character each), so streams carry real multi-chunk deltas. */
export function pieces(text: string, n = 3): string[] {
  if (text.length === 0) return [];
  const chars = [...text];
  const size = Math.max(1, Math.ceil(chars.length / n));
  const out: string[] = [];
  for (let i = 0; i < chars.length; i += size) out.push(chars.slice(i, i + size).join(''));
  return out;
}

export function lastUserText(messages: unknown, textOf: (m: Json) => string): string {
  const list = Array.isArray(messages) ? (messages as Json[]) : [];
  for (let i = list.length - 1; i >= 0; i--) {
    const m = list[i]!;
    if (m.role === 'user') {
      const t = textOf(m);
      if (t.length > 0) return t;
    }
  }
  return '';
}

export async function startBase(
  handle: (req: Received, res: http.ServerResponse, server: BaseServer) => void | Promise<void>,
): Promise<BaseServer> {
  const sockets = new Set<Socket>();
  const base: BaseServer = {
    port: 0,
    received: [],
    closedEarly: 0,
    stop: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      let body: Json | undefined;
      try {
        body = chunks.length > 0 ? (JSON.parse(Buffer.concat(chunks).toString('utf8')) as Json) : undefined;
      } catch {
        body = undefined;
      }
      const u = new URL(req.url ?? '/', 'http://double');
      const rec: Received = { method: req.method ?? '', url: req.url ?? '', path: u.pathname, query: u.searchParams, headers: req.headers, body };
      base.received.push(rec);
      Promise.resolve(handle(rec, res, base)).catch((e: unknown) => {
        if (!res.headersSent) sendJson(res, 500, { double_error: String(e) });
        else res.destroy();
      });
    });
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  base.port = (server.address() as AddressInfo).port;
  return base;
}
