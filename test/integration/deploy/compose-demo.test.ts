// The compose file's demo, run here without Docker: its demo service
// (deploy/compose/demo-service.mjs) registers in Nacos, Consul and Eureka
// (protocol doubles here, the real servers under compose) through their HTTP
// APIs, its zk-register job (deploy/compose/zk-register.sh) writes the
// Spring Cloud node into the real ZooKeeper with Debian's zkCli.sh, and the
// gateway, on deploy/meshgate.compose.yaml with the compose host names
// replaced by local addresses, routes /nacos, /consul, /eureka and /zookeeper
// to it through each registry.
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { parse } from 'yaml';
import { ConsulDouble } from '../../doubles/consul/server.js';
import { EurekaDouble } from '../../doubles/eureka/server.js';
import { startNacosDouble } from '../../doubles/nacos/server.js';
import { startGateway, waitFor } from '../../helpers/gateway.js';
import { freePort } from '../../helpers/upstream.js';
import { startZookeeper } from '../../helpers/zookeeper.js';

const ZK_CLI = '/usr/share/zookeeper/bin/zkCli.sh';

test('the compose demo: one service registered in all four registries answers through every route', { skip: existsSync(ZK_CLI) ? false : 'zkCli.sh not installed', timeout: 120_000 }, async () => {
  // The compose file wires the demo service and the ZooKeeper job to these scripts.
  const compose = parse(readFileSync('deploy/docker-compose.yml', 'utf8')) as { services: Record<string, { command?: string[]; entrypoint?: string[]; volumes?: string[] }> };
  assert.deepEqual(compose.services.demo!.command, ['node', '/demo/demo-service.mjs']);
  assert.deepEqual(compose.services['zk-register']!.entrypoint, ['/bin/sh', '/demo/zk-register.sh']);

  const zk = await startZookeeper();
  const nacos = await startNacosDouble();
  const consul = new ConsulDouble();
  await consul.start();
  const eureka = new EurekaDouble();
  await eureka.start();
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'meshgate-compose-'));
  let demo: ChildProcess | undefined;
  let gw: Awaited<ReturnType<typeof startGateway>> | undefined;
  try {
    demo = spawn(process.execPath, ['deploy/compose/demo-service.mjs'], {
      env: { ...process.env, ADVERTISE: '127.0.0.1', LISTEN: '127.0.0.1', PORT: String(port), NACOS_ADDR: nacos.address, CONSUL_ADDR: consul.address, EUREKA_URL: eureka.url },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let demoOut = '';
    demo.stdout!.on('data', (d) => (demoOut += d));
    demo.stderr!.on('data', (d) => (demoOut += d));
    const zkJob = spawnSync('/bin/sh', ['deploy/compose/zk-register.sh'], {
      env: { ...process.env, ZK_CLI, ZK_SERVER: zk.connectString, ADVERTISE: '127.0.0.1', DEMO_PORT: String(port) },
      encoding: 'utf8',
      timeout: 60_000,
    });
    assert.equal(zkJob.status, 0, zkJob.stdout + zkJob.stderr);

    const text = readFileSync('deploy/meshgate.compose.yaml', 'utf8')
      .replace('0.0.0.0:8080', `127.0.0.1:${await freePort()}`)
      .replace('0.0.0.0:8001', `127.0.0.1:${await freePort()}`)
      .replace('zookeeper:2181', zk.connectString)
      .replace('nacos:8848', nacos.address)
      .replace('consul:8500', consul.address)
      .replace('http://eureka:8761/eureka', eureka.url);
    const file = join(dir, 'meshgate.yaml');
    writeFileSync(file, text);
    gw = await startGateway(text, { configPath: file });
    for (const registry of ['nacos', 'consul', 'eureka', 'zookeeper']) {
      const body = await waitFor(async () => {
        const res = await fetch(`${gw!.listenerUrl('public')}/${registry}/hello`);
        if (res.status !== 200) return undefined;
        return (await res.json()) as { service: string; instance: string; registry: string };
      }, 30_000, 200).catch(() => assert.fail(`/${registry} never answered; demo said:\n${demoOut}`));
      assert.deepEqual(body, { service: 'demo', instance: `127.0.0.1:${port}`, method: 'GET', path: `/${registry}/hello`, registry });
    }
  } finally {
    await gw?.stop();
    demo?.kill('SIGTERM');
    await zk.destroy();
    await nacos.stop();
    await consul.stop();
    await eureka.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});
