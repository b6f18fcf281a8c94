// The load balancer contract.
import type { LoadBalancerConfig } from '../config/schema.js';
import type { Instance } from './instance.js';

/** What a balancer may read of the request (hash keys, sticky cookies). */
export interface PickContext {
  header(name: string): string | undefined;
  query(name: string): string | undefined;
  cookie(name: string): string | undefined;
  readonly clientIp: string;
  /** Sticky sessions set a cookie on the response through this. */
  setResponseCookie?(cookie: string): void;
}

export interface LoadBalancer {
  /**
   * Pick one available instance, or undefined if none is.
   * `exclude` holds instances already tried by this request (retries go elsewhere when they can).
   */
  pick(ctx: PickContext, exclude?: ReadonlySet<Instance>): Instance | undefined;
}

/** Built when a cluster's instance list or config changes; owns its own state. */
export type LoadBalancerFactory = (instances: readonly Instance[], config: LoadBalancerConfig) => LoadBalancer;
