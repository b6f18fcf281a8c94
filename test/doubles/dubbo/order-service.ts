// A small OrderService for the provider double:
//   Order getOrder(Long id)              POJO result; id 0 -> null; id < 0 -> IllegalArgumentException
//   String findByItem(String item)       String argument and result
//   Order createOrder(Order order)       POJO argument (a map with "class")
//   void cancelOrder(Long id)            null result
//   Order failOrder(Long id)             always throws IllegalStateException
//   String hang(String s)                never answers
//   String crash(String s)               kills the provider while the call is in flight
//   String whoami()                      the provider's address and the tenant attachment
import { JavaException, NEVER, type ServiceDef } from './provider.js';

export const ORDER_SERVICE = 'com.example.OrderService';
export const ORDER_CLASS = 'com.example.Order';

export function orderService(opts: { version?: string; group?: string } = {}): ServiceDef {
  let nextId = 1000;
  return {
    interface: ORDER_SERVICE,
    version: opts.version ?? '1.0.0',
    group: opts.group ?? '',
    methods: {
      getOrder([id], ctx) {
        if (id === 0) return null;
        if (typeof id !== 'number') throw new JavaException('java.lang.IllegalArgumentException', `id must be a long, got ${typeof id}`);
        if (id < 0) throw new JavaException('java.lang.IllegalArgumentException', `id must be positive: ${id}`);
        return { class: ORDER_CLASS, id, item: `item-${id}`, quantity: 2, tenant: ctx.attachments['x-tenant'] ?? null };
      },
      findByItem([item]) {
        return `found:${String(item)}`;
      },
      createOrder([order]) {
        const o = order as Record<string, unknown> | null;
        if (!o) throw new JavaException('java.lang.NullPointerException', 'order is null');
        return { ...o, id: nextId++, status: 'CREATED' };
      },
      cancelOrder() {
        return null;
      },
      failOrder([id]) {
        throw new JavaException('java.lang.IllegalStateException', `order ${String(id)} cannot be processed`);
      },
      hang() {
        return NEVER;
      },
      crash(_args, ctx) {
        setTimeout(() => ctx.provider.kill(), 50);
        return NEVER;
      },
      whoami(_args, ctx) {
        return `${ctx.provider.address} tenant=${String(ctx.attachments['x-tenant'] ?? '')}`;
      },
    },
  };
}
