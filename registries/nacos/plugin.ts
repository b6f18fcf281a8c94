import { defineRegistryPlugin } from '../../src/discovery/types.js';
import { NacosRegistrySchema } from './schema.js';

export default defineRegistryPlugin({
  type: 'nacos',
  schema: NacosRegistrySchema,
  serviceSuffix: 'nacos',
  load: async () => (await import('./index.js')).default,
});
