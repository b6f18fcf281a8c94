// Config of a static registry: a fixed list of endpoints.
import { z } from 'zod';
import { registryConfigSchema } from '../../src/discovery/types.js';

export const StaticRegistrySchema = registryConfigSchema('static', {
  /** "host:port" or "host:port weight=N key=value ..." */
  endpoints: z.array(z.string().min(1)),
  protocol: z.string().optional(),
});

export type StaticConfig = z.output<typeof StaticRegistrySchema>;
