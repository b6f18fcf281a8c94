import { defineRegistryPlugin } from '../../src/discovery/types.js';
import { EurekaRegistrySchema } from './schema.js';

export default defineRegistryPlugin({
  type: 'eureka',
  schema: EurekaRegistrySchema,
  serviceSuffix: 'eureka',
  // Eureka app names are upper case on the wire; the gateway name is the lower-cased app.
  names: () => ({ pattern: '<app, lower case>.eureka', accepts: (n) => /^[^.A-Z][^A-Z]*\.eureka$/.test(n) }),
  load: async () => (await import('./index.js')).default,
});
