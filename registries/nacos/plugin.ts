import { defineRegistryPlugin } from '../../src/discovery/types.js';
import { NacosRegistrySchema } from './schema.js';

export default defineRegistryPlugin({
  type: 'nacos',
  schema: NacosRegistrySchema,
  serviceSuffix: 'nacos',
  names: (config) => {
    const tails = config.groups.map((g) => `.${`${g}.${config.namespace}`.replace(/_/g, '-')}.nacos`);
    return { pattern: tails.map((t) => `<service>${t}`).join(' or '), accepts: (n) => tails.some((t) => n.endsWith(t) && n.length > t.length) };
  },
  load: async () => (await import('./index.js')).default,
});
