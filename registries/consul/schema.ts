// Config of a Consul registry: blocking queries on the catalog and each service's health.
import { z } from 'zod';
import { hostPortSchema, registryConfigSchema } from '../../src/discovery/types.js';

export const ConsulRegistrySchema = registryConfigSchema('consul', {
  servers: z.array(hostPortSchema).min(1),
  datacenter: z.string().default('dc1'),
  token: z.string().optional(),
  tags: z.array(z.string()).optional(),
  waitSec: z.number().int().min(1).default(30),
  secure: z.boolean().default(false),
});

export type ConsulConfig = z.output<typeof ConsulRegistrySchema>;
