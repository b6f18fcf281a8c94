// Config of a DNS registry: A/AAAA (domain) or SRV (srv) lookups on an interval.
import { z } from 'zod';
import { hostPortSchema, registryConfigSchema } from '../../src/discovery/types.js';

export const DnsRegistrySchema = registryConfigSchema('dns', {
  /** host:port resolved as A/AAAA */
  domain: hostPortSchema.optional(),
  /** SRV name, e.g. _http._tcp.payments.internal; gives ports and weights */
  srv: z.string().optional(),
  intervalMs: z.number().int().min(1).default(5_000),
  /** Resolver servers (host or host:port); default: the system resolver */
  resolvers: z.array(z.string()).optional(),
});

export type DnsConfig = z.output<typeof DnsRegistrySchema>;
