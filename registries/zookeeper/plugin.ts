import { defineRegistryPlugin } from '../../src/discovery/types.js';
import { ZookeeperRegistrySchema } from './schema.js';

export default defineRegistryPlugin({
  type: 'zookeeper',
  schema: ZookeeperRegistrySchema,
  serviceSuffix: 'zookeeper',
  // Any interface or application name: the tree decides, the config cannot.
  names: () => ({ pattern: 'providers:<interface>:<version>:<group>.zookeeper or <service>.zookeeper', accepts: (n) => /^[^.].*\.zookeeper$/.test(n) }),
  load: async () => (await import('./index.js')).default,
});
