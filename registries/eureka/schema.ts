// Config of a Eureka registry: REST polling of one or more Eureka servers.
import { z } from 'zod';
import { registryConfigSchema } from '../../src/discovery/types.js';

export const EurekaRegistrySchema = registryConfigSchema('eureka', {
  /** e.g. http://user:pass@127.0.0.1:8761/eureka (Spring Cloud) or .../eureka/v2 (Netflix) */
  servers: z.array(z.string().url()).min(1),
  fetchIntervalMs: z.number().int().min(1).default(5_000),
});

export type EurekaConfig = z.output<typeof EurekaRegistrySchema>;
