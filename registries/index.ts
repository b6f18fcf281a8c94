// Every registry kind meshgate knows, as plug-ins (RegistryPlugin in
// src/discovery/types.ts). The config schema composes its `registries` union
// from this list, config validation runs each kind's checks, and the gateway
// loads adapters through it (src/discovery/registries.ts). Importing it loads
// schemas only: an adapter, with its client library, is imported when a
// registry of its kind starts.
//
// Adding a kind: registries/<kind>/ (schema.ts, plugin.ts, the adapter) and its
// entry here.
import type { z } from 'zod';
import consulPlugin from './consul/plugin.js';
import dnsPlugin from './dns/plugin.js';
import eurekaPlugin from './eureka/plugin.js';
import nacosPlugin from './nacos/plugin.js';
import staticPlugin from './static/plugin.js';
import zookeeperPlugin from './zookeeper/plugin.js';

/** In the order `meshgate schema` lists them. */
export const REGISTRY_PLUGINS = [staticPlugin, dnsPlugin, zookeeperPlugin, nacosPlugin, consulPlugin, eurekaPlugin] as const;

export type AnyRegistryPlugin = (typeof REGISTRY_PLUGINS)[number];
/** The config of any registry kind, discriminated by `type`. */
export type AnyRegistryConfig = z.output<AnyRegistryPlugin['schema']>;
