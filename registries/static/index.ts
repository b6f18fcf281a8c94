// Static registry: a fixed list of endpoints, as service `<name>.static`.
// Each entry is "host:port" followed by optional "weight=N" and "key=value" words.
import type { z } from 'zod';
import type { StaticRegistrySchema } from '../../src/config/schema.js';
import { parseHostPort, type Endpoint, type RegistryFactory } from '../../src/discovery/types.js';

type StaticConfig = z.output<typeof StaticRegistrySchema>;

export function parseStaticEndpoint(spec: string): Endpoint {
  const [addr, ...words] = spec.trim().split(/\s+/);
  const { host, port } = parseHostPort(addr!);
  if (port === 0) throw new Error(`port in "${spec}" must be 1..65535`);
  const metadata: Record<string, string> = {};
  let weight = 1;
  for (const w of words) {
    const eq = w.indexOf('=');
    if (eq <= 0) throw new Error(`"${w}" in "${spec}" is not key=value`);
    const k = w.slice(0, eq);
    const v = w.slice(eq + 1);
    if (k === 'weight') {
      weight = Number(v);
      if (!Number.isFinite(weight) || weight < 0) throw new Error(`weight in "${spec}" must be a number >= 0`);
    } else metadata[k] = v;
  }
  return { host, port, weight, healthy: true, metadata };
}

const createStatic: RegistryFactory<StaticConfig> = (config, sink) => ({
  start() {
    const endpoints = config.endpoints.map((s) => {
      const e = parseStaticEndpoint(s);
      if (config.protocol && !e.metadata.protocol) e.metadata.protocol = config.protocol;
      return e;
    });
    sink.replaceAll(new Map([[`${config.name}.static`, endpoints]]));
    sink.status(true);
    sink.synced();
  },
  stop() {},
});

export default createStatic;
