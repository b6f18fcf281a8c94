// Register a provider double the way Dubbo does:
//  - ZooKeeper, interface-level layout: an ephemeral node
//    /dubbo/<interface>/providers/<URL-encoded provider URL> (Java URLEncoder: space as '+').
//  - Nacos: service providers:<interface>:<version>:<group> with the URL
//    parameters (plus protocol, path, category) as instance metadata, through
//    the real npm client (which then sends beats).
import { NacosNamingClient } from 'nacos';
import zookeeper from 'node-zookeeper-client';
import type { DubboProviderDouble, ServiceDef } from './provider.js';

export interface Registration {
  /** Remove the registration (ZooKeeper: close the session; Nacos: deregister and close). */
  close(): Promise<void>;
}

const javaUrlEncode = (s: string): string => encodeURIComponent(s).replace(/%20/g, '+');

function call<T>(fn: (cb: (err: unknown, r?: T) => void) => void): Promise<T> {
  return new Promise((resolve, reject) => fn((err, r) => (err ? reject(err) : resolve(r as T))));
}

export async function registerInZookeeper(connectString: string, provider: DubboProviderDouble, def: ServiceDef, root = '/dubbo'): Promise<Registration> {
  const client = zookeeper.createClient(connectString, { sessionTimeout: 10_000, spinDelay: 200 });
  await new Promise<void>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error('provider could not connect to ZooKeeper')), 20_000);
    client.once('connected', () => {
      clearTimeout(t);
      resolve();
    });
    client.connect();
  });
  const dir = `${root}/${def.interface}/providers`;
  await call<string>((cb) => client.mkdirp(dir, cb));
  const node = `${dir}/${javaUrlEncode(provider.url(def))}`;
  await call<string>((cb) => client.create(node, Buffer.alloc(0), zookeeper.CreateMode.EPHEMERAL, cb));
  return {
    async close() {
      await new Promise<void>((resolve) => {
        client.once('disconnected', () => resolve());
        client.close();
        setTimeout(resolve, 2_000).unref();
      });
    },
  };
}

/** Dubbo's Nacos service name. */
export function nacosServiceName(def: ServiceDef): string {
  return `providers:${def.interface}:${def.version ?? ''}:${def.group ?? ''}`;
}

const silent = { info() {}, warn() {}, error() {}, debug() {}, log() {} };

export async function registerInNacos(serverAddr: string, provider: DubboProviderDouble, def: ServiceDef): Promise<Registration> {
  const client = new NacosNamingClient({ logger: silent as never, serverList: serverAddr, namespace: 'public' });
  await client.ready();
  const url = new URL(provider.url(def));
  const metadata: Record<string, string> = Object.fromEntries(url.searchParams);
  metadata.protocol = 'dubbo';
  metadata.path = def.interface;
  metadata.category = 'providers';
  const service = nacosServiceName(def);
  const instance = { ip: provider.host, port: provider.port, weight: 1, healthy: true, enabled: true, ephemeral: true, metadata };
  await client.registerInstance(service, instance as never);
  return {
    async close() {
      await client.deregisterInstance(service, { ip: provider.host, port: provider.port } as never).catch(() => undefined);
      await (client as unknown as { close(): Promise<void> }).close();
    },
  };
}
