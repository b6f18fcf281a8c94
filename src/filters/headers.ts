// headers: add / set / remove request and response headers.
import type { z } from 'zod';
import type { HeadersFilterSchema } from '../config/schema.js';
import type { FilterInstance } from './types.js';

type HeadersConfig = z.output<typeof HeadersFilterSchema>;

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
