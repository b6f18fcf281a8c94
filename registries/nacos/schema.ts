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
  /** UDP push listener port (0: any free port). http protocol only. */
  udpPort: z.number().int().min(0).optional(),
  /**
   * http: the v1 HTTP API (Nacos 1.x/2.x; removed in 3.2). grpc: Nacos' native
   * gRPC protocol (2.x/3.x) on port + grpcPortOffset. auto: gRPC when a server
   * answers it at start, else the v1 HTTP API.
   */
  protocol: z.enum(['http', 'grpc', 'auto']).default('http'),
  /** The gRPC port of each server is its configured (HTTP) port plus this. */
  grpcPortOffset: z.number().int().min(-65535).max(65535).default(1000),
  /** gRPC protocol: how often the connection is health-checked (HealthCheckRequest). */
  grpcHealthIntervalMs: positiveInt.default(5_000),
});

export type NacosConfig = z.output<typeof NacosRegistrySchema>;
