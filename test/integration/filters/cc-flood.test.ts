// A flood of 1,000,000 distinct client IPs through a cc rule keyed by IP, at
// the full speed of the filter: the memory it keeps stays under the stated
// cap (64 MB of heap for a rule of the default maxKeys 100,000 with the
// contract's two limits), and clients that keep sending stay limited exactly
// while the flood pushes the others out. Prints the figures the README quotes.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import v8 from 'node:v8';
import vm from 'node:vm';
import pino from 'pino';
import type { Exchange } from '../../../src/exchange/exchange.js';
import { compileFilters } from '../../../src/filters/index.js';
import type { FilterInstance } from '../../../src/filters/types.js';
import { Metrics } from '../../../src/observability/metrics.js';
import { MemoryStore } from '../../../src/store/memory.js';

v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;

const CAP_MB = 64;

function ccFilter(rule: Record<string, unknown>): FilterInstance {
  const ctx = { store: new MemoryStore(), log: pino({ level: 'silent' }), metrics: new Metrics({ processMetrics: false }) };
  return compileFilters([{ type: 'cc', rules: [rule] } as never], ctx, 'filters', new Map()).chain[0]!;
}

function heapMb(): number {
  gc();
  gc();
  return process.memoryUsage().heapUsed / 1e6;
}

const ip = (i: number): string => `${10 + (i >>> 24)}.${(i >>> 16) & 255}.${(i >>> 8) & 255}.${i & 255}`;

describe('cc under a flood of distinct identities', () => {
  it('1,000,000 distinct IPs: memory stays under the cap; clients that keep sending stay limited', () => {
    const f = ccFilter({ key: 'ip', qps: 50, qpm: 1000, blockSeconds: 300 });
    const ex = { clientIp: '', vars: {}, routeName: 'flood', responseHeaderOps: [] } as unknown as Exchange & { clientIp: string };
    const before = heapMb();
    // Ten clients each sending far above 50/s, among the flood: every 500th request is one of theirs.
    const regular = Array.from({ length: 10 }, (_, i) => `192.0.2.${i + 1}`);
    const admittedAt = new Map<string, number[]>(regular.map((r) => [r, []]));
    let peakIdentities = 0;
    let peakHeap = 0;
    let samples = 0;
    const t0 = performance.now();
    for (let i = 0; i < 1_000_000; i++) {
      ex.clientIp = ip(i);
      f.onRequest!(ex);
      if (i % 50 === 0) {
        const r = regular[(i / 50) % 10]!;
        ex.clientIp = r;
        if (f.onRequest!(ex) === undefined) admittedAt.get(r)!.push(Date.now());
      }
      if (i % 5_000 === 4_999) {
        const kept = (f.describe!() as { rules: Array<{ counts: { identities: number } }> }).rules[0]!.counts.identities;
        peakIdentities = Math.max(peakIdentities, kept);
        // The heap when the rule holds the most identities (just before a generation is dropped).
        if (kept >= 90_000 && i > 200_000 && samples++ < 3) peakHeap = Math.max(peakHeap, heapMb() - before);
      }
    }
    const seconds = (performance.now() - t0) / 1000;
    const grown = Math.max(peakHeap, heapMb() - before);
    const counts = (f.describe!() as { rules: Array<{ counts: { identities: number; evictions: number } }> }).rules[0]!.counts;
    console.log(`flood: 1,000,000 distinct IPs in ${seconds.toFixed(1)} s (${Math.round(1e6 / seconds)}/s); heap at most +${grown.toFixed(1)} MB (at ${peakIdentities} identities); identities kept at the end ${counts.identities}; forgotten ${counts.evictions}`);
    assert.ok(grown < CAP_MB, `heap grew ${grown.toFixed(1)} MB (cap ${CAP_MB} MB)`);
    assert.ok(counts.identities <= 100_000 && peakIdentities <= 100_000);
    // The regular clients were never forgotten: none got more than 50 in any second (nor a fresh allowance).
    for (const [r, times] of admittedAt) {
      let lo = 0;
      for (let hi = 0; hi < times.length; hi++) {
        while (times[hi]! - times[lo]! >= 1000) lo++;
        assert.ok(hi - lo + 1 <= 50, `${r}: ${hi - lo + 1} admitted within a second`);
      }
      // They broke 50/s, so they were blocked (blockSeconds 300): only their first 50 passed.
      assert.equal(times.length, 50, `${r} admitted ${times.length}`);
    }
    // Retained for the measurement above.
    assert.ok(f);
  });

  it('accuracy under eviction: an identity sending less often than maxKeys/2 new identities arrive is forgotten between requests', () => {
    // A per-day limit of 5, maxKeys 10,000: the slow client sends once per 6,000 flood identities (> 5,000 = maxKeys/2).
    const f = ccFilter({ key: 'ip', qpd: 5, maxKeys: 10_000 });
    const ex = { clientIp: '', vars: {}, routeName: 'flood', responseHeaderOps: [] } as unknown as Exchange & { clientIp: string };
    const send = (who: string): boolean => {
      ex.clientIp = who;
      return f.onRequest!(ex) === undefined;
    };
    let slowAdmitted = 0;
    let fastAdmitted = 0;
    let n = 0;
    for (let round = 0; round < 20; round++) {
      for (let i = 0; i < 6_000; i++) {
        send(ip(n++));
        // Another client, seen once every 3,000 new identities (< maxKeys/2): kept, and limited exactly.
        if (i % 3_000 === 0 && send('198.51.100.2')) fastAdmitted++;
      }
      if (send('198.51.100.1')) slowAdmitted++;
    }
    console.log(`eviction: qpd 5, maxKeys 10,000, flood of 6,000 new identities between requests: slow client admitted ${slowAdmitted}/20, client seen every 3,000 admitted ${fastAdmitted}/40`);
    assert.equal(fastAdmitted, 5, 'an identity seen often enough is counted exactly');
    assert.ok(slowAdmitted > 5, 'the stated loss: forgotten identities start afresh');
  });
});
