// ZooKeeper registry: Dubbo interface-level providers, Dubbo 3 application-level
// instances and Spring Cloud ZooKeeper instances, kept live through watches.
// Service names:
//   /dubbo/<interface>/providers/<url>  -> providers:<interface>:<version>:<group>.zookeeper
//   /services/<name>/<id> (Curator)     -> <name>.zookeeper
import type { RegistryFactory } from '../../src/discovery/types.js';
import type { ZookeeperConfig } from './schema.js';
import { ZookeeperWatcher } from './watcher.js';

export { ZookeeperWatcher } from './watcher.js';

const createZookeeper: RegistryFactory<ZookeeperConfig> = (config, sink) => new ZookeeperWatcher(config, sink);

export default createZookeeper;
