// The Nacos gRPC double (test/doubles/nacos-grpc) in its own process, driven
// over stdin, for the endpoint-scale and worker benches: the gateway's memory
// and CPU are then measured without the registry's, and the churn it
// generates does not share the bench process's event loop.
//
//   node --import tsx test/bench/lib/nacos-grpc-double-child.ts
//
// Prints `{"ready":true,"grpcPort":N,"httpAddress":"127.0.0.1:M"}` (configure
// the gateway with httpAddress: Nacos' gRPC port is the HTTP port + 1000),
// then takes one JSON command per line and answers one JSON line with its id:
//   {id, op:'fill', prefix, from, count, per}   services prefix<from..from+count-1>, `per` instances each
//   {id, op:'set', name, instances:[{ip,port,metadata}]}
//   {id, op:'churn', rate, seconds, prefix, count, per, hot?, hotEvery?}
//   {id, op:'stats'}
// Exits when stdin closes.
import { createInterface } from 'node:readline';
import { startNacosGrpcDouble } from '../../doubles/nacos-grpc/server.js';

const nacos = await startNacosGrpcDouble();
const ip = (s: number, i: number): string => `10.${(s >> 8) & 255}.${s & 255}.${i + 1}`;
/** Port of each churned instance (service index * per + slot): it moves between 8080 and 8081. */
const ports = new Map<number, number>();

type Cmd = { id: number; op: string; [k: string]: unknown };

async function churn(c: Cmd): Promise<Record<string, unknown>> {
  // One change = one instance registered or deregistered = one push. A
  // replacement is two changes (the old instance leaves, then the new one
  // joins on the other port), so services never go empty. Services are taken
  // in turn, a replacement per service, so no two changes of one service
  // coalesce. Every `hotEvery`-th change instead re-registers the hot
  // service's one instance with a new metadata revision (same host:port: its
  // balancer is rebuilt while it serves).
  const rate = Number(c.rate);
  const seconds = Number(c.seconds);
  const prefix = String(c.prefix);
  const count = Number(c.count);
  const per = Number(c.per);
  const hot = c.hot as { name: string; ip: string; port: number } | undefined;
  const hotEvery = Number(c.hotEvery ?? 100);
  const total = Math.round(rate * seconds);
  const t0 = performance.now();
  let sent = 0;
  let hotSent = 0;
  let k = 0;
  let pendingAdd: (() => void) | undefined;
  while (sent < total) {
    const due = Math.min(total, Math.floor(((performance.now() - t0) / 1000) * rate));
    while (sent < due) {
      sent++;
      if (hot && sent % hotEvery === 0) {
        nacos.register(hot.name, { ip: hot.ip, port: hot.port, metadata: { rev: String(sent) } });
        hotSent++;
        continue;
      }
      if (pendingAdd) {
        pendingAdd();
        pendingAdd = undefined;
        continue;
      }
      const s = k % count;
      const slot = Math.floor(k / count) % per;
      k++;
      const id = s * per + slot;
      const old = ports.get(id) ?? 8080;
      const next = old === 8080 ? 8081 : 8080;
      ports.set(id, next);
      nacos.deregister(`${prefix}${s}`, ip(s, slot), old);
      pendingAdd = () => nacos.register(`${prefix}${s}`, { ip: ip(s, slot), port: next });
    }
    nacos.seen.length = 0; // the double records every request and ack: not wanted over a long churn
    await new Promise((r) => setTimeout(r, 5));
  }
  if (pendingAdd) {
    pendingAdd();
    sent++;
  }
  return { sent, hotSent, seconds: (performance.now() - t0) / 1000 };
}

async function run(c: Cmd): Promise<Record<string, unknown>> {
  switch (c.op) {
    case 'fill': {
      const from = Number(c.from ?? 0);
      for (let s = from; s < from + Number(c.count); s++) {
        nacos.createService(`${String(c.prefix)}${s}`);
        for (let i = 0; i < Number(c.per); i++) nacos.register(`${String(c.prefix)}${s}`, { ip: ip(s, i), port: 8080, metadata: { version: 'v1', zone: `z${i % 3}` } });
      }
      return {};
    }
    case 'set':
      for (const inst of c.instances as Array<{ ip: string; port: number; metadata?: Record<string, string> }>) nacos.register(String(c.name), inst);
      return {};
    case 'churn':
      return churn(c);
    case 'stats':
      // pendingPushes: pushes the gateway has not acknowledged yet.
      return { ...nacos.stats, pending: nacos.pendingPushes.size, connections: nacos.connections() };
    default:
      throw new Error(`unknown op ${c.op}`);
  }
}

process.stdout.write(`${JSON.stringify({ ready: true, grpcPort: nacos.port, httpAddress: nacos.httpAddress })}\n`);
const rl = createInterface({ input: process.stdin });
rl.on('line', (line) => {
  const c = JSON.parse(line) as Cmd;
  run(c).then(
    (r) => process.stdout.write(`${JSON.stringify({ id: c.id, ok: true, ...r })}\n`),
    (e: Error) => process.stdout.write(`${JSON.stringify({ id: c.id, ok: false, error: e.message })}\n`),
  );
});
rl.on('close', () => void nacos.close().then(() => process.exit(0)));
