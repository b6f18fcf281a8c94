// The OrderService route used by the HTTP-to-Dubbo tests and the benchmark.
import type { ConfigInput } from '../../../src/config/schema.js';
import { ORDER_SERVICE } from '../../doubles/dubbo/order-service.js';

const Long = 'java.lang.Long';

type RouteInput = NonNullable<ConfigInput['routes']>[number];
type DubboInput = NonNullable<RouteInput['dubbo']>;

export function dubboRoute(name: string, prefix: string, service: string, extra: Partial<DubboInput> = {}): RouteInput {
  return {
    name,
    match: { path: { prefix } },
    backends: [{ service }],
    dubbo: {
      service: ORDER_SERVICE,
      version: '1.0.0',
      group: '',
      methods: [
        { serviceMethod: 'getOrder', httpPath: `${prefix}/{id}`, httpMethods: ['GET'], headersAttach: 'x-tenant', params: [{ paramKey: 'id', paramSource: 'PATH', paramType: Long }] },
        { serviceMethod: 'findByItem', httpPath: `${prefix}/by-item`, httpMethods: ['GET'], params: [{ paramKey: 'item', paramSource: 'QUERY', paramType: 'java.lang.String' }] },
        { serviceMethod: 'createOrder', httpPath: prefix, httpMethods: ['POST'], paramFromEntireBody: { paramType: 'com.example.Order' } },
        { serviceMethod: 'cancelOrder', httpPath: `${prefix}/{id}`, httpMethods: ['DELETE'], params: [{ paramKey: 'id', paramSource: 'PATH', paramType: Long }] },
        { serviceMethod: 'failOrder', httpPath: `${prefix}/{id}/fail`, httpMethods: ['POST', 'GET'], params: [{ paramKey: 'id', paramSource: 'PATH', paramType: Long }] },
        { serviceMethod: 'hang', httpPath: `${prefix}/hang`, httpMethods: ['GET'], params: [{ paramKey: 's', paramSource: 'QUERY', paramType: 'java.lang.String' }] },
        { serviceMethod: 'crash', httpPath: `${prefix}/crash`, httpMethods: ['GET'], params: [{ paramKey: 's', paramSource: 'QUERY', paramType: 'java.lang.String' }] },
        { serviceMethod: 'whoami', httpPath: `${prefix}/whoami`, httpMethods: ['GET'], headersAttach: '*' },
        { serviceMethod: 'noSuchMethod', httpPath: `${prefix}/missing`, httpMethods: ['GET'] },
      ],
      ...extra,
    },
  };
}

