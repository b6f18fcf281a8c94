import { defineRegistryPlugin } from '../../src/discovery/types.js';
import { ConsulRegistrySchema } from './schema.js';

export default defineRegistryPlugin({
  type: 'consul',
  schema: ConsulRegistrySchema,
  serviceSuffix: 'consul',
  names: (config) => {
    const tail = `.${config.datacenter}.consul`;
    return { pattern: `<service>${tail}`, accepts: (n) => n.endsWith(tail) && n.length > tail.length };
  },
  load: async () => (await import('./index.js')).default,
});
