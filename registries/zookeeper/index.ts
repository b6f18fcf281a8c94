// Placeholder until the zookeeper watcher lands: refuses to start with a clear error.
import type { RegistryFactory } from '../../src/discovery/types.js';

const create: RegistryFactory<{ name: string }> = (config) => ({
  start() {
    throw new Error(`registry "${config.name}": type zookeeper is not implemented yet`);
  },
  stop() {},
});

export default create;
