// Config of a Nacos registry: every service of a namespace's groups.
import { z } from 'zod';
import { hostPortSchema, registryConfigSchema } from '../../src/discovery/types.js';

const positiveInt = z.number().int().min(1);

export const NacosRegistrySchema = registryConfigSchema('nacos', {
  servers: z.array(hostPortSchema).min(1),
  namespace: z.string().default('public'),
  groups: z.array(z.string().min(1)).default(['DEFAULT_GROUP']),
  clusters: z.array(z.string().min(1)).default(['DEFAULT']),
  username: z.string().optional(),
  password: z.string().optional(),
  accessToken: z.string().optional(),
  /** How often the service list is refreshed (new and removed services). */
  serviceListIntervalMs: positiveInt.default(5_000),
  /** Fallback polling of each service, in addition to UDP push. */
  pollIntervalMs: positiveInt.default(10_000),
  /** UDP push listener port (0: any free port). */
  udpPort: z.number().int().min(0).optional(),
});

export type NacosConfig = z.output<typeof NacosRegistrySchema>;
