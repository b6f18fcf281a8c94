// Maps a registry `type` to its adapter under registries/<type>/.
import type { RegistryConfig } from '../config/schema.js';
import type { RegistryFactory } from './types.js';

type Loader = () => Promise<{ default: RegistryFactory<never> }>;

const loaders: Record<RegistryConfig['type'], Loader> = {
  static: () => import('../../registries/static/index.js'),
  dns: () => import('../../registries/dns/index.js'),
  zookeeper: () => import('../../registries/zookeeper/index.js'),
  nacos: () => import('../../registries/nacos/index.js'),
  consul: () => import('../../registries/consul/index.js'),
  eureka: () => import('../../registries/eureka/index.js'),
};

export async function loadRegistryFactory(type: RegistryConfig['type']): Promise<RegistryFactory<RegistryConfig>> {
  const mod = await loaders[type]();
  return mod.default as unknown as RegistryFactory<RegistryConfig>;
}

/** The gateway name suffix each registry kind gives its services. */
export const SERVICE_SUFFIX: Record<RegistryConfig['type'], string> = {
  static: 'static',
  dns: 'dns',
  zookeeper: 'zookeeper',
  nacos: 'nacos',
  consul: 'consul',
  eureka: 'eureka',
};
