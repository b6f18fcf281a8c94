import { defineRegistryPlugin } from '../../src/discovery/types.js';
import { EurekaRegistrySchema } from './schema.js';

export default defineRegistryPlugin({
  type: 'eureka',
  schema: EurekaRegistrySchema,
  serviceSuffix: 'eureka',
  load: async () => (await import('./index.js')).default,
});
