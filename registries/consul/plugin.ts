import { defineRegistryPlugin } from '../../src/discovery/types.js';
import { ConsulRegistrySchema } from './schema.js';

export default defineRegistryPlugin({
  type: 'consul',
  schema: ConsulRegistrySchema,
  serviceSuffix: 'consul',
  load: async () => (await import('./index.js')).default,
});
