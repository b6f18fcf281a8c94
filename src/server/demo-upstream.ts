// A tiny echo service for the embedded default config, so `npm start` shows a
// routed answer with nothing else installed. Answers JSON describing the request.
import http from 'node:http';
import { parseHostPort } from '../discovery/types.js';

export async function startDemoUpstreams(addresses: string[]): Promise<http.Server[]> {
  const servers: http.Server[] = [];
  for (const addr of addresses) {
    const { host, port } = parseHostPort(addr);
    const server = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const body = JSON.stringify(
          {
            instance: addr,
            method: req.method,
            path: req.url,
            headers: req.headers,
            bodyBytes: chunks.reduce((n, c) => n + c.length, 0),
          },
          null,
          2,
        );
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
        res.end(body);
      });
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => resolve());
    });
    servers.push(server);
  }
  return servers;
}
