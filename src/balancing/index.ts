// Balancer factory: config type -> implementation.
import type { LoadBalancerConfig } from '../config/schema.js';
import type { Instance } from './instance.js';
import { SmoothRoundRobin, WeightedRandom } from './simple.js';
import type { LoadBalancer } from './types.js';

export function createLoadBalancer(instances: readonly Instance[], config: LoadBalancerConfig): LoadBalancer {
  switch (config.type) {
    case 'round_robin':
      return new SmoothRoundRobin(instances);
    case 'random':
      return new WeightedRandom(instances);
    default:
      throw new Error(`load balancer ${config.type} is not implemented yet`);
  }
}
