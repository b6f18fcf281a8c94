// The system_protection filter: the Node analogue of Sentinel's system rules.
// A gateway whose event loop is late serves every request late; shedding
// inbound requests with a fast 503 (flag SP) keeps it responsive instead of
// letting queues grow until it collapses.
//
// Event-loop lag is measured by timer drift: a 50 ms interval timer notes how
// late it fires. The probe is shared by all filter instances in the process
// and reports the worst drift of its last two ticks, so a single stall is
// seen for about 100 ms after it ends.
import { z } from 'zod';
import { positiveInt, strict } from '../config/schema.js';
import { defineFilter, type FilterContext, type FilterInstance, type FilterResult, type Rejection } from '../filters/types.js';
import type { Exchange } from '../exchange/exchange.js';

export const SystemProtectionFilterSchema = strict({
  type: z.literal('system_protection'),
  maxEventLoopLagMs: positiveInt.optional(),
  maxConcurrency: positiveInt.optional(),
});

export type SystemProtectionConfig = z.output<typeof SystemProtectionFilterSchema>;

export interface LagProbe {
  /** Current event-loop lag estimate in ms. */
  lagMs(): number;
  release(): void;
}

const TICK_MS = 50;

class TimerDriftProbe {
  private users = 0;
  private timer: NodeJS.Timeout | undefined;
  private expected = 0;
  private last = 0;
  private previous = 0;

  acquire(): LagProbe {
    if (this.users++ === 0) this.start();
    let released = false;
    return {
      lagMs: () => this.lagMs(),
      release: () => {
        if (released) return;
        released = true;
        if (--this.users === 0) this.stop();
      },
    };
  }

  lagMs(): number {
    // A tick that is overdue right now counts too: the loop may still be stuck in the current turn.
    const overdue = performance.now() - this.expected;
    return Math.max(this.last, this.previous, overdue > 0 ? overdue : 0);
  }

  private start(): void {
    this.expected = performance.now() + TICK_MS;
    this.timer = setInterval(() => {
      const now = performance.now();
      this.previous = this.last;
      this.last = Math.max(0, now - this.expected);
      this.expected = now + TICK_MS;
    }, TICK_MS);
    this.timer.unref();
  }

  private stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    this.last = this.previous = 0;
  }
}

const sharedProbe = new TimerDriftProbe();

export interface SystemProtectionOptions {
  /** For tests: a probe with a controllable lag. */
  probe?: LagProbe;
}

const SHED: Rejection = { status: 503, flag: 'SP', message: 'gateway overloaded', headers: { 'retry-after': '1' } };

export class SystemProtection implements FilterInstance {
  readonly type = 'system_protection';
  readonly phase = 'traffic' as const;
  /** Requests that passed this filter and have not ended. */
  inFlight = 0;
  shedLag = 0;
  shedConcurrency = 0;
  private readonly probe: LagProbe | undefined;
  private readonly mark: string;
  private static count = 0;

  constructor(
    readonly config: SystemProtectionConfig,
    opts: SystemProtectionOptions = {},
  ) {
    if (config.maxEventLoopLagMs === undefined && config.maxConcurrency === undefined) {
      throw new Error('set maxEventLoopLagMs, maxConcurrency or both');
    }
    this.probe = config.maxEventLoopLagMs !== undefined ? (opts.probe ?? sharedProbe.acquire()) : undefined;
    this.mark = `system_protection#${++SystemProtection.count}`;
  }

  onRequest(ex: Exchange): FilterResult {
    const c = this.config;
    if (this.probe !== undefined && this.probe.lagMs() > c.maxEventLoopLagMs!) {
      this.shedLag++;
      ex.vars.rejectedBy = 'system_protection';
      return SHED;
    }
    if (c.maxConcurrency !== undefined) {
      if (this.inFlight >= c.maxConcurrency) {
        this.shedConcurrency++;
        ex.vars.rejectedBy = 'system_protection';
        return SHED;
      }
      this.inFlight++;
      ex.vars[this.mark] = true;
    }
    return undefined;
  }

  onDone(ex: Exchange): void {
    if (ex.vars[this.mark] === true) {
      ex.vars[this.mark] = false;
      this.inFlight--;
    }
  }

  describe(): unknown {
    return {
      ...this.config,
      eventLoopLagMs: this.probe ? Math.round(this.probe.lagMs() * 10) / 10 : undefined,
      inFlight: this.config.maxConcurrency !== undefined ? this.inFlight : undefined,
      shed: { eventLoopLag: this.shedLag, concurrency: this.shedConcurrency },
    };
  }

  close(): void {
    this.probe?.release();
  }
}

export function createSystemProtection(config: SystemProtectionConfig, ctx: Pick<FilterContext, 'previous'>, opts?: SystemProtectionOptions): FilterInstance {
  // Same config at the same place: keep the in-flight count of requests still running.
  const prev = ctx.previous;
  if (prev instanceof SystemProtection && JSON.stringify(prev.config) === JSON.stringify(config)) return prev;
  return new SystemProtection(config, opts);
}

export const systemProtectionFilter = defineFilter({
  type: 'system_protection',
  schema: SystemProtectionFilterSchema,
  create: (config, ctx) => createSystemProtection(config, ctx),
});
