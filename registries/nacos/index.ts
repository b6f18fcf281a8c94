// Nacos registry: every service of the configured namespace and groups, as
// `<service>.<group>.<namespace>.nacos` (group and namespace with '_' -> '-').
// Instances follow UDP push at once, with polling as the fallback.
import type { RegistryFactory } from '../../src/discovery/types.js';
import type { NacosConfig } from './schema.js';
import { NacosWatcher } from './watcher.js';

export { NacosWatcher } from './watcher.js';
export { nacosServiceName } from './parse.js';

const createNacos: RegistryFactory<NacosConfig> = (config, sink) => new NacosWatcher(config, sink);

export default createNacos;
