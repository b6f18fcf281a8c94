// One static endpoint: "host:port" followed by optional "weight=N" and "key=value" words.
import { parseHostPort, type Endpoint } from '../../src/discovery/types.js';

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
