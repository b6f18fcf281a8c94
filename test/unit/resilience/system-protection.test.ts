// system_protection: shed load on event-loop lag or concurrency.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { SystemProtectionFilterSchema } from '../../../src/resilience/system-protection.js';
import { createSystemProtection, SystemProtection, type LagProbe } from '../../../src/resilience/system-protection.js';
import { Exchange } from '../../../src/exchange/exchange.js';

const exchange = (): Exchange => new Exchange({ url: '/', method: 'GET', headers: {} } as never, {} as never, 'rid', '10.0.0.1', 'h', 'http');
const cfg = (c: Record<string, unknown>) => SystemProtectionFilterSchema.parse({ type: 'system_protection', ...c });

describe('system_protection', () => {
  it('sheds with 503 SP while event-loop lag is past the threshold', () => {
    let lag = 0;
    const probe: LagProbe = { lagMs: () => lag, release: () => undefined };
    const f = createSystemProtection(cfg({ maxEventLoopLagMs: 100 }), {}, { probe });
    assert.equal(f.onRequest!(exchange()), undefined);
    lag = 100;
    assert.equal(f.onRequest!(exchange()), undefined, 'at the threshold: still served');
    lag = 101;
    const ex = exchange();
    const r = f.onRequest!(ex) as { status: number; flag: string; headers: Record<string, string> };
    assert.equal(r.status, 503);
    assert.equal(r.flag, 'SP');
    assert.equal(r.headers['retry-after'], '1');
    assert.equal(ex.vars.rejectedBy, 'system_protection');
    lag = 5;
    assert.equal(f.onRequest!(exchange()), undefined, 'recovers when the lag falls');
  });

  it('sheds while maxConcurrency requests are in flight', () => {
    const f = createSystemProtection(cfg({ maxConcurrency: 2 }), {});
    const a = exchange();
    assert.equal(f.onRequest!(a), undefined);
    assert.equal(f.onRequest!(exchange()), undefined);
    assert.equal((f.onRequest!(exchange()) as { flag: string }).flag, 'SP');
    f.onDone!(a);
    f.onDone!(a);
    assert.equal(f.onRequest!(exchange()), undefined);
    assert.equal((f.onRequest!(exchange()) as { flag: string }).flag, 'SP');
    assert.equal((f as SystemProtection).inFlight, 2);
  });

  it('the timer-drift probe sees a blocked event loop', async () => {
    const f = createSystemProtection(cfg({ maxEventLoopLagMs: 80 }), {});
    try {
      await new Promise((r) => setTimeout(r, 120)); // let the probe tick
      const until = performance.now() + 250;
      while (performance.now() < until) {
        /* block the loop */
      }
      const r = f.onRequest!(exchange()) as { flag: string } | undefined;
      assert.equal(r?.flag, 'SP', 'a request right after a 250 ms stall is shed');
      await new Promise((res) => setTimeout(res, 400));
      assert.equal(f.onRequest!(exchange()), undefined, 'served again once the loop keeps time');
    } finally {
      f.close!();
    }
  });

  it('needs at least one threshold', () => {
    assert.throws(() => createSystemProtection(cfg({}), {}), /maxEventLoopLagMs/);
  });
});
