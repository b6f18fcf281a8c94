// headers: add / set / remove request and response headers.
import { z } from 'zod';
import { strict } from '../config/schema.js';
import { defineFilter, type FilterInstance } from './types.js';

const headerOps = strict({
  add: z.record(z.string(), z.string()).optional(),
  set: z.record(z.string(), z.string()).optional(),
  remove: z.array(z.string()).optional(),
});

export const HeadersFilterSchema = strict({
  type: z.literal('headers'),
  request: headerOps.optional(),
  response: headerOps.optional(),
});

type HeadersConfig = z.output<typeof HeadersFilterSchema>;

export const headersFilter = defineFilter({
  type: 'headers',
  schema: HeadersFilterSchema,
  create: (config) => createHeaders(config),
});

export function createHeaders(config: HeadersConfig): FilterInstance {
  const req = config.request;
  const res = config.response;
  return {
    type: 'headers',
    phase: 'transform',
    onRequest(ex) {
      if (req) ex.requestHeaderOps.push(req);
      if (res) ex.responseHeaderOps.push(res);
    },
  };
}
