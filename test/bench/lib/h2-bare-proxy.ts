// The reference point of the HTTP/2 and gRPC benches: a node:http2 proxy of a
// few lines (streams piped, trailers copied; no routing, filters, balancing,
// retries or metrics): what any Node proxy pays for HTTP/2 itself.
import http2 from 'node:http2';

export async function startBareH2Proxy(upstreamPort: number): Promise<{ port: number; close(): void }> {
  const up = http2.connect(`http://127.0.0.1:${upstreamPort}`);
  up.on('error', () => undefined);
  const server = http2.createServer();
  server.on('stream', (ds, h) => {
    const headers: Record<string, string | string[] | undefined> = {};
    for (const k in h) if (k !== ':scheme' && k !== ':authority') headers[k] = h[k];
    const us = up.request(headers);
    ds.pipe(us);
    us.on('response', (rh, flags) => {
      if (flags & http2.constants.NGHTTP2_FLAG_END_STREAM) return ds.respond(rh, { endStream: true });
      let trailers: Record<string, string | string[] | undefined> = {};
      us.on('trailers', (t) => (trailers = t));
      ds.respond(rh, { waitForTrailers: true });
      ds.on('wantTrailers', () => ds.sendTrailers(trailers));
      us.pipe(ds);
    });
    us.on('error', () => ds.close());
    ds.on('error', () => us.close());
  });
  server.on('sessionError', () => undefined);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return {
    port: (server.address() as { port: number }).port,
    close: () => {
      up.destroy();
      server.close();
    },
  };
}
