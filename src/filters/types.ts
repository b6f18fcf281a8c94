// The filter contract. A filter is a plug-in: a module that owns its config
// schema and its factory (FilterPlugin), listed once in src/filters/catalog.ts;
// its instances have a declared phase and handlers called per request.
import type { Logger } from 'pino';
import type { z } from 'zod';
import type { FilterConfig } from '../config/schema.js';
import type { Exchange } from '../exchange/exchange.js';
import type { Flag } from '../exchange/flags.js';
import type { CounterStore } from '../store/types.js';
import type { Metrics } from '../observability/metrics.js';
import type { Consumers } from './auth/consumers.js';

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
  /** On a route, this filter stands in for the global filter of the same type (the WAF: a route raises its level or turns it off). */
  readonly replacesGlobal?: boolean;
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

/** What compiling a filter gets besides its own settings. */
export type FilterCompileContext = FilterContext & {
  /** The path prefix the route matches on (prefix rewrites replace it). */
  readonly routePrefix?: string;
  /** The config's consumers and their credentials (the auth filters look credentials up here). */
  readonly consumers?: Consumers;
};

/**
 * A filter kind: its `type` name, the schema of its settings (the whole
 * entry, `type` included; strict, so unknown keys are refused with their
 * path), and the factory a compiled config calls.
 */
export interface FilterPlugin<S extends z.ZodType = z.ZodType> {
  readonly type: string;
  readonly schema: S;
  /** Several instances when one entry works in several phases (cc: IP rules before auth, consumer rules after); the first describes and closes them all. */
  create(config: z.output<S>, ctx: FilterCompileContext): FilterInstance | FilterInstance[];
}

/** Declares a filter kind with its settings typed by its own schema. */
export function defineFilter<S extends z.ZodType>(plugin: FilterPlugin<S>): FilterPlugin {
  return plugin as unknown as FilterPlugin;
}
