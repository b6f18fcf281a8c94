// Runs the Nacos double in its own process for the registry scale benchmark, so
// the gateway process's memory is measured without the server's.
//   npx tsx test/bench/lib/zk-nacos-double-child.ts <services> <instancesPerService>
// Prints "READY <port>" once every instance is registered; exits when stdin closes.
import { startNacosDouble } from '../../doubles/nacos/server.js';

const services = Number(process.argv[2] ?? 1000);
const perService = Number(process.argv[3] ?? 10);
const nacos = await startNacosDouble({ cacheMillis: 60_000 });
for (let s = 0; s < services; s++) {
  const list = [];
  for (let i = 0; i < perService; i++) list.push({ ip: `10.${(s >> 8) & 255}.${s & 255}.${i + 1}`, port: 8080, metadata: { version: 'v1', zone: `z${i % 3}` } });
  nacos.setInstances(`svc-${s}`, list);
}
process.stdout.write(`READY ${nacos.port}\n`);
process.stdin.resume();
process.stdin.on('end', () => void nacos.stop().then(() => process.exit(0)));
process.stdin.on('close', () => void nacos.stop().then(() => process.exit(0)));
