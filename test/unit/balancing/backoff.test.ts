import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { RetriesSchema } from '../../../src/config/schema.js';
import { backoffMs } from '../../../src/upstreams/forward.js';

describe('retry backoff', () => {
  it('is fully jittered below min(maxMs, baseMs x 2^(n-1)) (defaults 25 ms, 250 ms)', () => {
    const r = RetriesSchema.parse({ attempts: 5 });
    for (const [n, cap] of [[1, 25], [2, 50], [3, 100], [4, 200], [5, 250], [9, 250]] as const) {
      let max = 0;
      let min = Infinity;
      for (let i = 0; i < 2000; i++) {
        const b = backoffMs(r, n);
        assert.ok(b >= 0 && b <= cap, `retry ${n}: ${b}`);
        max = Math.max(max, b);
        min = Math.min(min, b);
      }
      assert.ok(max > cap * 0.9 && min < cap * 0.1, `retry ${n} spreads over [0, ${cap}]: ${min}..${max}`);
    }
  });
});
