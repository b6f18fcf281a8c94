import { defineRegistryPlugin } from '../../src/discovery/types.js';
import { DnsRegistrySchema } from './schema.js';

export default defineRegistryPlugin({
  type: 'dns',
  schema: DnsRegistrySchema,
  serviceSuffix: 'dns',
  check: (config) => (config.domain || config.srv ? [] : [{ path: [], message: 'dns registry needs domain or srv' }]),
  load: async () => (await import('./index.js')).default,
});
