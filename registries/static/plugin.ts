import { defineRegistryPlugin } from '../../src/discovery/types.js';
import { parseStaticEndpoint } from './endpoint.js';
import { StaticRegistrySchema } from './schema.js';

export default defineRegistryPlugin({
  type: 'static',
  schema: StaticRegistrySchema,
  serviceSuffix: 'static',
  names: (config) => {
    const name = `${config.name}.static`;
    return { pattern: name, accepts: (n) => n === name, exact: [name] };
  },
  check: (config) =>
    config.endpoints.flatMap((spec, i) => {
      try {
        parseStaticEndpoint(spec);
        return [];
      } catch (err) {
        return [{ path: ['endpoints', i], message: (err as Error).message }];
      }
    }),
  load: async () => (await import('./index.js')).default,
});
