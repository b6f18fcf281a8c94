// The ZooKeeper registry against a real ZooKeeper: services that appear later,
// removals, empty services, disabled instances, garbage nodes, session expiry
// and a ZooKeeper outage, all observed through an EndpointTable.
import net from 'node:net';
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { pino } from 'pino';
import zookeeper from 'node-zookeeper-client';
import { EndpointTable } from '../../../src/discovery/endpoint-table.js';
import { ZookeeperRegistrySchema } from '../../../src/config/schema.js';
import createZookeeper, { type ZookeeperWatcher } from '../../../registries/zookeeper/index.js';
import { startZookeeper, type ZookeeperServer } from '../../helpers/zookeeper.js';
import { waitUntil } from '../../helpers/wait.js';

const javaEncode = (s: string) => encodeURIComponent(s).replace(/%20/g, '+');

function dubboNode(ip: string, port: number, iface: string, params: Record<string, string> = {}): string {
  const q = new URLSearchParams({ anyhost: 'true', application: 'demo', interface: iface, methods: 'sayHello,ping', side: 'provider', ...params });
  return javaEncode(`dubbo://${ip}:${port}/${iface}?${decodeURIComponent(q.toString())}`);
}

function curator(name: string, id: string, address: string, port: number, metadata: Record<string, string> = {}): Buffer {
  return Buffer.from(
    JSON.stringify({
      name,
      id,
      address,
      port,
      sslPort: null,
      payload: { '@class': 'org.springframework.cloud.zookeeper.discovery.ZookeeperInstance', id: name, name, metadata },
      registrationTimeUTC: Date.now(),
      serviceType: 'DYNAMIC',
      uriSpec: { parts: [{ value: 'scheme', variable: true }, { value: '://', variable: false }] },
    }),
  );
}

/** A second ZooKeeper client playing the providers' side. */
class ZkWriter {
  readonly client: zookeeper.Client;
  private constructor(client: zookeeper.Client) {
    this.client = client;
  }
  static async connect(connectString: string, opts: Record<string, unknown> = {}): Promise<ZkWriter> {
    const client = zookeeper.createClient(connectString, { sessionTimeout: 30000, spinDelay: 200, ...opts });
    await new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error('writer could not connect')), 20000);
      client.once('connected', () => {
        clearTimeout(t);
        resolve();
      });
      client.connect();
    });
    return new ZkWriter(client);
  }
  private call<T>(fn: (cb: (err: unknown, r?: T) => void) => void): Promise<T> {
    return new Promise((resolve, reject) => fn((err, r) => (err ? reject(err) : resolve(r as T))));
  }
  mkdirp(path: string): Promise<string> {
    return this.call((cb) => this.client.mkdirp(path, cb));
  }
  async create(path: string, data?: Buffer, ephemeral = true): Promise<void> {
    await this.mkdirp(path.slice(0, path.lastIndexOf('/')));
    await this.call((cb) => this.client.create(path, data ?? Buffer.alloc(0), ephemeral ? zookeeper.CreateMode.EPHEMERAL : zookeeper.CreateMode.PERSISTENT, cb));
  }
  setData(path: string, data: Buffer): Promise<unknown> {
    return this.call((cb) => this.client.setData(path, data, cb));
  }
  remove(path: string): Promise<void> {
    return this.call((cb) => this.client.remove(path, cb));
  }
  async removeRecursive(path: string): Promise<void> {
    let children: string[] = [];
    try {
      children = await this.call<string[]>((cb) => this.client.getChildren(path, cb));
    } catch {
      return; // gone already
    }
    for (const c of children) await this.removeRecursive(`${path}/${c}`);
    await this.remove(path).catch(() => {});
  }
  close(): void {
    this.client.close();
  }
}

const waitFor = (what: string, cond: () => boolean, timeoutMs = 20000): Promise<void> => waitUntil(what, cond, timeoutMs, 25);

function hosts(table: EndpointTable, service: string): string[] | undefined {
  return table.endpointsOf(service)?.map((e) => `${e.host}:${e.port}`).sort();
}

describe('zookeeper registry (real ZooKeeper)', () => {
  let zk: ZookeeperServer;
  let writer: ZkWriter;
  const logs: string[] = [];
  const log = pino({ level: 'warn' }, { write: (s: string) => void logs.push(s) });

  before(async () => {
    zk = await startZookeeper();
    writer = await ZkWriter.connect(zk.connectString);
  });
  after(async () => {
    writer?.close();
    await zk?.destroy();
  });

  function startWatcher(extra: Record<string, unknown> = {}, servers: string[] = [zk.connectString]) {
    const table = new EndpointTable(log);
    const config = ZookeeperRegistrySchema.parse({ name: 'zk', type: 'zookeeper', servers, spinDelayMs: 200, ...extra });
    const watcher = createZookeeper(config, table.sinkFor('zk', 'zookeeper', log)) as ZookeeperWatcher;
    void watcher.start();
    return { table, watcher, state: () => table.registryStates()[0]! };
  }

  test('Dubbo providers: initial list, later services, removals, empty service, disabled provider', async () => {
    const iface = 'com.foo.DemoService';
    await writer.create(`/dubbo/${iface}/providers/${dubboNode('10.0.0.1', 20880, iface, { version: '1.0.0', weight: '200' })}`);
    await writer.create(`/dubbo/${iface}/providers/${dubboNode('10.0.0.2', 20880, iface, { version: '1.0.0' })}`);
    await writer.mkdirp(`/dubbo/${iface}/consumers`);
    await writer.create(`/dubbo/mapping/${iface}`, Buffer.from('demo'), false);
    const { table, watcher } = startWatcher();
    try {
      const svc = 'providers:com.foo.DemoService:1.0.0:.zookeeper';
      await waitFor('synced', () => table.allSynced());
      assert.deepEqual(hosts(table, svc), ['10.0.0.1:20880', '10.0.0.2:20880']);
      const e1 = table.endpointsOf(svc)!.find((e) => e.host === '10.0.0.1')!;
      assert.equal(e1.weight, 200);
      assert.equal(e1.metadata.application, 'demo');
      assert.equal(e1.metadata.methods, 'sayHello,ping');
      assert.equal(e1.metadata.protocol, 'dubbo');
      // Dubbo's own bookkeeping is not a service
      assert.ok(!table.services().some((s) => s.name.includes('mapping')), 'mapping is not a service');

      // another version and group of the same interface: a second service name
      const n3 = dubboNode('10.0.0.3', 20881, iface, { version: '2.0.0', group: 'g1' });
      await writer.create(`/dubbo/${iface}/providers/${n3}`);
      await waitFor('v2 service', () => hosts(table, 'providers:com.foo.DemoService:2.0.0:g1.zookeeper')?.[0] === '10.0.0.3:20881');

      // a brand-new interface registered after start is routable without restart
      const other = 'com.foo.OtherService';
      await writer.create(`/dubbo/${other}/providers/${dubboNode('10.0.0.9', 20880, other)}`);
      await waitFor('new interface', () => hosts(table, 'providers:com.foo.OtherService::.zookeeper')?.[0] === '10.0.0.9:20880');

      // a disabled provider is not routed to
      await writer.create(`/dubbo/${iface}/providers/${dubboNode('10.0.0.4', 20880, iface, { version: '1.0.0', enabled: 'false' })}`);
      await new Promise((r) => setTimeout(r, 300));
      assert.deepEqual(hosts(table, svc), ['10.0.0.1:20880', '10.0.0.2:20880']);

      // provider leaves
      await writer.remove(`/dubbo/${iface}/providers/${dubboNode('10.0.0.2', 20880, iface, { version: '1.0.0' })}`);
      await waitFor('provider removed', () => hosts(table, svc)?.join() === '10.0.0.1:20880');

      // last provider of v2 leaves: the service is empty (valid "no instances")
      await writer.remove(`/dubbo/${iface}/providers/${n3}`);
      await waitFor('v2 empty', () => table.endpointsOf('providers:com.foo.DemoService:2.0.0:g1.zookeeper')?.length === 0);

      // the interface node goes away: its services are removed
      await writer.removeRecursive(`/dubbo/${other}`);
      await waitFor('interface removed', () => table.get('providers:com.foo.OtherService::.zookeeper') === undefined);
      assert.ok(watcher.describe().watchedEntries as number >= 1);
    } finally {
      await watcher.stop();
      await writer.removeRecursive('/dubbo');
    }
  });

  test('Spring Cloud / application-level: status, garbage nodes kept-last-known, later services', async () => {
    await writer.create('/services/orders/i-1', curator('orders', 'i-1', '10.1.0.1', 8080, { instance_status: 'UP' }));
    await writer.create('/services/orders/i-2', curator('orders', 'i-2', '10.1.0.2', 8080));
    await writer.create('/services/orders/i-junk', Buffer.from('{not json'));
    const { table, watcher } = startWatcher();
    try {
      await waitFor('synced', () => table.allSynced());
      assert.deepEqual(hosts(table, 'orders.zookeeper'), ['10.1.0.1:8080', '10.1.0.2:8080']);
      assert.ok(logs.some((l) => l.includes('/services/orders/i-junk')), 'garbage node is logged');

      // OUT_OF_SERVICE: not routed to
      await writer.setData('/services/orders/i-2', curator('orders', 'i-2', '10.1.0.2', 8080, { instance_status: 'OUT_OF_SERVICE' }));
      await waitFor('i-2 excluded', () => hosts(table, 'orders.zookeeper')?.join() === '10.1.0.1:8080');
      // back UP
      await writer.setData('/services/orders/i-2', curator('orders', 'i-2', '10.1.0.2', 8080, { instance_status: 'UP' }));
      await waitFor('i-2 back', () => hosts(table, 'orders.zookeeper')?.length === 2);

      // a node that turns to garbage keeps what it said before; nothing crashes, service kept
      await writer.setData('/services/orders/i-1', Buffer.from('[[[garbage'));
      await new Promise((r) => setTimeout(r, 300));
      assert.deepEqual(hosts(table, 'orders.zookeeper'), ['10.1.0.1:8080', '10.1.0.2:8080']);
      assert.ok(logs.some((l) => l.includes('/services/orders/i-1')));

      // a later service
      await writer.create('/services/payments/p-1', curator('payments', 'p-1', '10.2.0.1', 9090));
      await waitFor('payments appears', () => hosts(table, 'payments.zookeeper')?.join() === '10.2.0.1:9090');

      // all instances gone: empty; the node gone: removed
      await writer.remove('/services/payments/p-1');
      await waitFor('payments empty', () => table.endpointsOf('payments.zookeeper')?.length === 0);
      await writer.remove('/services/payments');
      await waitFor('payments removed', () => table.get('payments.zookeeper') === undefined);
    } finally {
      await watcher.stop();
      await writer.removeRecursive('/services');
    }
  });

  test('session expiry: a new session is created and everything is listed again', async () => {
    const iface = 'com.foo.Expiry';
    await writer.create(`/dubbo/${iface}/providers/${dubboNode('10.3.0.1', 20880, iface)}`);
    // The watcher reaches ZooKeeper through a relay the test can cut, so that
    // it cannot win its session back while another connection ends it.
    const relay = await cutRelay(zk.connectString);
    const { table, watcher } = startWatcher({ sessionTimeoutMs: 4000 }, [relay.address]);
    try {
      const svc = 'providers:com.foo.Expiry::.zookeeper';
      await waitFor('synced', () => hosts(table, svc)?.length === 1);
      await waitFor('connected', () => !!watcher.session());
      const creds = watcher.session()!;
      // Cut the watcher off, take its session over from another connection and
      // close it: the server ends the session; the watcher's reconnect finds it expired.
      relay.cut();
      const thief = await ZkWriter.connect(zk.connectString, { sessionId: creds.id, sessionPassword: creds.password, sessionTimeout: 4000 });
      thief.close();
      await new Promise((r) => setTimeout(r, 500));
      relay.restore();
      await waitFor('a new session after expiry', () => (watcher.describe().sessions as number) >= 2, 30000);
      // a change made around the expiry is picked up by the new session's listing
      await writer.create(`/dubbo/${iface}/providers/${dubboNode('10.3.0.2', 20880, iface)}`);
      await waitFor('re-listed with the change', () => hosts(table, svc)?.length === 2, 30000);
      await waitFor('up again', () => table.registryStates()[0]!.up);
      // watches of the new session work
      await writer.remove(`/dubbo/${iface}/providers/${dubboNode('10.3.0.1', 20880, iface)}`);
      await waitFor('watch on new session', () => hosts(table, svc)?.join() === '10.3.0.2:20880');
    } finally {
      relay.close();
      await watcher.stop();
      await writer.removeRecursive('/dubbo');
    }
  });

  test('ZooKeeper down: endpoints kept, registry shown down; back up: changes made meanwhile are picked up', async () => {
    await writer.create('/services/stable/s-1', curator('stable', 's-1', '10.4.0.1', 8080), false);
    await writer.create('/services/stable/s-2', curator('stable', 's-2', '10.4.0.2', 8080), false);
    const { table, watcher, state } = startWatcher({ sessionTimeoutMs: 10000 });
    try {
      await waitFor('synced', () => hosts(table, 'stable.zookeeper')?.length === 2);
      writer.close();
      await zk.stop();
      await waitFor('registry down', () => !state().up);
      assert.ok(state().lastError);
      // keep-last-known while down
      await new Promise((r) => setTimeout(r, 1500));
      assert.deepEqual(hosts(table, 'stable.zookeeper'), ['10.4.0.1:8080', '10.4.0.2:8080']);

      await zk.restart();
      writer = await ZkWriter.connect(zk.connectString);
      // changes made while the gateway may still be reconnecting
      await writer.remove('/services/stable/s-1');
      await writer.create('/services/late/l-1', curator('late', 'l-1', '10.4.1.1', 8081), false);
      await waitFor('registry up', () => state().up, 30000).catch((err) => {
        throw new Error(`${(err as Error).message}: ${JSON.stringify(watcher.describe())} ${JSON.stringify(state())}`);
      });
      await waitFor('removal picked up', () => hosts(table, 'stable.zookeeper')?.join() === '10.4.0.2:8080', 30000);
      await waitFor('new service picked up', () => hosts(table, 'late.zookeeper')?.join() === '10.4.1.1:8081', 30000);
    } finally {
      await watcher.stop();
      await writer.removeRecursive('/services').catch(() => {});
    }
  });

  test('ZooKeeper hangs (connection open, no answers): shown down, endpoints kept, recovers', async () => {
    await writer.create('/services/frozen/f-1', curator('frozen', 'f-1', '10.5.0.1', 8080), false);
    const { table, watcher, state } = startWatcher({ sessionTimeoutMs: 3000 });
    try {
      await waitFor('synced', () => hosts(table, 'frozen.zookeeper')?.length === 1);
      zk.pause();
      try {
        await waitFor('registry down while the server hangs', () => !state().up, 20000);
        assert.deepEqual(hosts(table, 'frozen.zookeeper'), ['10.5.0.1:8080'], 'last known endpoints kept');
      } finally {
        zk.resume();
      }
      await waitFor('registry up again', () => state().up, 30000);
      await writer.create('/services/frozen/f-2', curator('frozen', 'f-2', '10.5.0.2', 8080), false).catch(async () => {
        // the writer's own session may have expired while the server was frozen
        writer.close();
        writer = await ZkWriter.connect(zk.connectString);
        await writer.create('/services/frozen/f-2', curator('frozen', 'f-2', '10.5.0.2', 8080), false);
      });
      await waitFor('watches work after recovery', () => hosts(table, 'frozen.zookeeper')?.length === 2, 30000);
    } finally {
      await watcher.stop();
      await writer.removeRecursive('/services').catch(() => {});
    }
  });
});

/** A TCP relay to `target` (host:port) whose connections the test can cut and refuse for a while. */
async function cutRelay(target: string): Promise<{ address: string; cut(): void; restore(): void; close(): void }> {
  const [host, port] = [target.slice(0, target.lastIndexOf(':')), Number(target.slice(target.lastIndexOf(':') + 1))];
  const open = new Set<net.Socket>();
  let refusing = false;
  const server = net.createServer((client) => {
    if (refusing) {
      client.destroy();
      return;
    }
    const upstream = net.connect(port, host);
    open.add(client).add(upstream);
    client.pipe(upstream).pipe(client);
    const drop = (): void => {
      client.destroy();
      upstream.destroy();
      open.delete(client);
      open.delete(upstream);
    };
    client.on('error', drop).on('close', drop);
    upstream.on('error', drop).on('close', drop);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const address = `127.0.0.1:${(server.address() as net.AddressInfo).port}`;
  return {
    address,
    cut: () => {
      refusing = true;
      for (const s of open) s.destroy();
    },
    restore: () => {
      refusing = false;
    },
    close: () => {
      for (const s of open) s.destroy();
      server.close();
    },
  };
}
