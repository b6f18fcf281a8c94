// Placeholder until the eureka watcher lands: refuses to start with a clear error.
import type { RegistryFactory } from '../../src/discovery/types.js';

const create: RegistryFactory<{ name: string }> = (config) => ({
  start() {
    throw new Error(`registry "${config.name}": type eureka is not implemented yet`);
  },
  stop() {},
});

export default create;
