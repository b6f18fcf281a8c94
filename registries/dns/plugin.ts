import { defineRegistryPlugin } from '../../src/discovery/types.js';
import { DnsRegistrySchema } from './schema.js';

export default defineRegistryPlugin({
  type: 'dns',
  schema: DnsRegistrySchema,
  serviceSuffix: 'dns',
  names: (config) => {
    const name = `${config.name}.dns`;
    return { pattern: name, accepts: (n) => n === name, exact: [name] };
  },
  check: (config) => (config.domain || config.srv ? [] : [{ path: [], message: 'dns registry needs domain or srv' }]),
  load: async () => (await import('./index.js')).default,
});
