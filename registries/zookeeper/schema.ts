// Config of a ZooKeeper registry: Dubbo and Curator (Spring Cloud) trees under root paths.
import { z } from 'zod';
import { hostPortSchema, registryConfigSchema } from '../../src/discovery/types.js';

const positiveInt = z.number().int().min(1);

export const ZookeeperRegistrySchema = registryConfigSchema('zookeeper', {
  servers: z.array(hostPortSchema).min(1),
  /** Root paths: /dubbo (interface level), /services (Dubbo 3 application level and Spring Cloud) */
  paths: z.array(z.string().startsWith('/')).default(['/dubbo', '/services']),
  sessionTimeoutMs: positiveInt.default(30_000),
  spinDelayMs: positiveInt.default(1_000),
  auth: z.string().optional(),
});

export type ZookeeperConfig = z.output<typeof ZookeeperRegistrySchema>;
