// Helpers for routing unit tests: real Exchange objects over fake requests, real clusters.
import { Cluster } from '../../../src/balancing/cluster.js';
import { DEFAULT_SERVICE, type LoadBalancerConfig } from '../../../src/config/schema.js';
import type { Endpoint } from '../../../src/discovery/types.js';
import { Exchange, type DownstreamRequest, type DownstreamResponse } from '../../../src/exchange/exchange.js';

export function exchange(opts: { headers?: Record<string, string>; url?: string; method?: string; ip?: string } = {}): Exchange {
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(opts.headers ?? {})) headers[k.toLowerCase()] = v;
  const req = { url: opts.url ?? '/', method: opts.method ?? 'GET', headers, rawHeaders: Object.entries(headers).flat() } as unknown as DownstreamRequest;
  return new Exchange(req, {} as DownstreamResponse, 'req-1', opts.ip ?? '127.0.0.1', 'example.com', 'http');
}

export function ep(hostPort: string, metadata: Record<string, string> = {}, weight = 1): Endpoint {
  const [host, port] = hostPort.split(':');
  return { host: host!, port: Number(port), weight, healthy: true, metadata };
}

export function cluster(name: string, endpoints: Endpoint[], loadBalancer: LoadBalancerConfig = { type: 'round_robin' }): Cluster {
  const c = new Cluster(name, { ...DEFAULT_SERVICE, loadBalancer });
  c.setEndpoints(endpoints);
  return c;
}
