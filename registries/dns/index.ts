// DNS registry: resolves A/AAAA (domain: host:port) or SRV (srv: _svc._tcp.name)
// every intervalMs and reports service `<name>.dns`. A failed lookup keeps the
// last answer; an answer with no records (NXDOMAIN / NODATA) empties the service.
import { Resolver } from 'node:dns/promises';
import { parseHostPort, type Endpoint, type RegistryFactory } from '../../src/discovery/types.js';
import type { DnsConfig } from './schema.js';

const EMPTY_CODES = new Set(['ENOTFOUND', 'ENODATA']);

const createDns: RegistryFactory<DnsConfig> = (config, sink) => {
  const service = `${config.name}.dns`;
  const resolver = new Resolver({ timeout: Math.min(config.intervalMs, 5000), tries: 2 });
  if (config.resolvers?.length) resolver.setServers(config.resolvers);
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;
  let lastError: string | undefined;

  async function resolveOnce(): Promise<Endpoint[]> {
    if (config.srv) {
      const records = await resolver.resolveSrv(config.srv);
      const out: Endpoint[] = [];
      for (const r of records) {
        const addrs = await resolveHost(r.name);
        for (const host of addrs) {
          out.push({ host, port: r.port, weight: Math.max(r.weight, 1), healthy: true, metadata: { priority: String(r.priority), target: r.name } });
        }
      }
      // SRV: only the lowest priority is in use (RFC 2782)
      const min = Math.min(...out.map((e) => Number(e.metadata.priority)));
      return out.filter((e) => Number(e.metadata.priority) === min);
    }
    const { host, port } = parseHostPort(config.domain!);
    return (await resolveHost(host)).map((ip) => ({ host: ip, port, weight: 1, healthy: true, metadata: { hostname: host } }));
  }

  async function resolveHost(host: string): Promise<string[]> {
    if (/^[\d.]+$/.test(host) || host.includes(':')) return [host];
    const [v4, v6] = await Promise.allSettled([resolver.resolve4(host), resolver.resolve6(host)]);
    const out: string[] = [];
    if (v4.status === 'fulfilled') out.push(...v4.value);
    if (v6.status === 'fulfilled') out.push(...v6.value);
    if (out.length) return out;
    const err = (v4.status === 'rejected' ? v4.reason : v6.status === 'rejected' ? v6.reason : undefined) as NodeJS.ErrnoException | undefined;
    if (err && !EMPTY_CODES.has(err.code ?? '')) throw err;
    return [];
  }

  async function tick(): Promise<void> {
    try {
      const eps = await resolveOnce();
      if (stopped) return;
      sink.set(service, eps);
      sink.status(true);
      sink.synced();
      lastError = undefined;
    } catch (e) {
      const err = e as NodeJS.ErrnoException;
      if (stopped) return;
      if (EMPTY_CODES.has(err.code ?? '')) {
        sink.set(service, []);
        sink.status(true);
        sink.synced();
      } else {
        lastError = `${err.code ?? ''} ${err.message}`.trim();
        sink.status(false, lastError);
      }
    } finally {
      if (!stopped) timer = setTimeout(() => void tick(), config.intervalMs).unref();
    }
  }

  return {
    start: () => tick(),
    stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
      resolver.cancel();
    },
    describe: () => ({ service, lastError }),
  };
};

export default createDns;
