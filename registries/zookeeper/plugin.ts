import { defineRegistryPlugin } from '../../src/discovery/types.js';
import { ZookeeperRegistrySchema } from './schema.js';

export default defineRegistryPlugin({
  type: 'zookeeper',
  schema: ZookeeperRegistrySchema,
  serviceSuffix: 'zookeeper',
  load: async () => (await import('./index.js')).default,
});
