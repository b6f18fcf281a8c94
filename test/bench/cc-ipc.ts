// The cost of counting in the primary of a --workers cluster: CPU per ask
// over the cluster IPC channel (store/primary-channel.ts), in the worker and
// in the primary, with answers from a stub (the counting itself is measured
// by `cc.ts --only micro`).
//
//   npx tsx test/bench/cc-ipc.ts [--asks 100000] [--concurrency 1,32]
import cluster from 'node:cluster';
import { askPrimary, onPrimaryAsk, servePrimaryChannel } from '../../src/store/primary-channel.js';
import { report } from './lib/report.js';

const argv = process.argv.slice(2);
const arg = (name: string, def: string): string => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? argv[i + 1]! : def;
};
const asks = Number(arg('asks', '100000'));
const levels = arg('concurrency', '1,32').split(',').map(Number);

async function runWorker(conc: number): Promise<void> {
  let i = 0;
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: conc }, async () => {
      while (i++ < asks) await askPrimary('rate', ['rule:abcdef12:12345678', '192.0.2.1', 'hit', 1]);
    }),
  );
  const c = process.cpuUsage(c0);
  process.send!({ t: 'done', cpuUs: (c.user + c.system) / asks, rps: asks / ((performance.now() - t0) / 1000) });
}

if (cluster.isPrimary) {
  onPrimaryAsk('rate', () => [1, 0, 0, 0, 100, 99, 1000, -1]);
  for (const conc of levels) {
    const w = cluster.fork({ MESHGATE_ROLE: 'worker', CC_IPC_CONC: String(conc) });
    servePrimaryChannel(w);
    const c0 = process.cpuUsage();
    const r = await new Promise<{ cpuUs: number; rps: number }>((resolve) => w.on('message', (m: { t: string; cpuUs: number; rps: number }) => m.t === 'done' && resolve(m)));
    const c = process.cpuUsage(c0);
    const primaryUs = (c.user + c.system) / asks;
    console.log(`${conc} in flight: worker ${r.cpuUs.toFixed(1)} µs + primary ${primaryUs.toFixed(1)} µs CPU per ask, ${Math.round(r.rps)} asks/s`);
    report({ bench: 'cc-ipc', metric: `CPU us per ask, worker + primary, ${conc} in flight`, value: r.cpuUs + primaryUs, unit: 'us' });
    w.kill();
  }
} else {
  await runWorker(Number(process.env.CC_IPC_CONC ?? '1'));
}
