// The filter contract. A filter is a small module with a declared phase, a
// config schema (in src/config/schema.ts), a factory called when a config is
// compiled, and handlers called per request.
import type { Logger } from 'pino';
import type { FilterConfig } from '../config/schema.js';
import type { Exchange } from '../server/exchange.js';
import type { Flag } from '../server/flags.js';
import type { CounterStore } from '../store/types.js';
import type { Metrics } from '../observability/metrics.js';

/** Phases run in this order; global filters first, then the route's. */
export const PHASES = ['access', 'protect', 'auth', 'traffic', 'transform'] as const;
export type Phase = (typeof PHASES)[number];
// access: ip_restriction | protect: cc, waf | auth | traffic: flow_control, system_protection | transform: rewrite, headers

export interface Rejection {
  status: number;
  flag: Flag;
  message?: string;
  headers?: Record<string, string>;
  body?: string;
}

/** undefined: continue; a Rejection: answer now. A promise only when the filter must wait (queueing, remote store). */
export type FilterResult = Rejection | undefined | void;

export interface FilterInstance {
  readonly type: string;
  readonly phase: Phase;
  onRequest?(ex: Exchange): FilterResult | Promise<FilterResult>;
  /** Called with the response headers before they are written downstream. */
  onResponse?(ex: Exchange, status: number, headers: Record<string, string | string[] | undefined>): void;
  /** Called once when the exchange ends, whatever the outcome. */
  onDone?(ex: Exchange): void;
  /** Admin view of the filter's state. */
  describe?(): unknown;
  /** Called when a config swap retires this filter. */
  close?(): void;
}

export interface FilterContext {
  readonly store: CounterStore;
  readonly log: Logger;
  readonly metrics: Metrics;
  /** The route name, or undefined for global filters. */
  readonly route?: string;
  /** The filter instance with the same identity in the previous config, to carry state over. */
  readonly previous?: FilterInstance;
}

export type FilterFactory<C extends FilterConfig = FilterConfig> = (config: C, ctx: FilterContext) => FilterInstance;
