// Balancer factory: config type -> implementation.
import type { LoadBalancerConfig } from '../config/schema.js';
import { hashKeyFn, Maglev, RingHash } from './consistent-hash.js';
import type { Instance } from './instance.js';
import { LeastRequest } from './least-request.js';
import { SmoothRoundRobin, WeightedRandom } from './simple.js';
import { StickyCookie } from './sticky.js';
import type { LoadBalancer } from './types.js';

export function createLoadBalancer(instances: readonly Instance[], config: LoadBalancerConfig): LoadBalancer {
  switch (config.type) {
    case 'round_robin':
      return new SmoothRoundRobin(instances);
    case 'random':
      return new WeightedRandom(instances);
    case 'least_request':
      return new LeastRequest(instances, config.choices);
    case 'consistent_hash':
      return config.algorithm === 'maglev'
        ? new Maglev(instances, hashKeyFn(config.key))
        : new RingHash(instances, hashKeyFn(config.key), config.ringSize);
    case 'sticky': {
      const fallback =
        config.fallback === 'random'
          ? new WeightedRandom(instances)
          : config.fallback === 'least_request'
            ? new LeastRequest(instances)
            : new SmoothRoundRobin(instances);
      return new StickyCookie(instances, config.cookie, config.ttlSec, fallback);
    }
  }
}
