// Hooks the request path calls around each upstream attempt. Circuit breakers
// implement BreakerSet; outlier detection implements OutlierDetector.
import type { Instance } from '../balancing/instance.js';
import type { AttemptOutcome } from '../exchange/outcome.js';

/** Admission granted by the breakers of a service; report the result exactly once. */
export interface BreakerPermit {
  done(outcome: AttemptOutcome, rtMs: number): void;
}

export interface BreakerSet {
  /** A permit, or undefined when a breaker is open (answer UO or the fallback). */
  tryPass(inst: Instance | undefined): BreakerPermit | undefined;
  describe(): unknown;
  close?(): void;
  /** Some breakers are per instance: when one instance is refused, another may still pass. */
  readonly perInstance?: boolean;
}

export interface OutlierDetector {
  /** Every attempt's outcome against an instance. */
  report(inst: Instance, outcome: AttemptOutcome): void;
  describe?(): unknown;
  close?(): void;
}
