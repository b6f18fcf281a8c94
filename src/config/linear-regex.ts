// Process-wide protection against catastrophic backtracking in V8 regexes.
//
// Regexes from the config (route path/header/query regexes, canary
// byHeaderPattern, rewrite path regexes) and the WAF's translated CRS
// patterns are matched against client data. V8's regex engine backtracks,
// so a pattern such as `^/(a+)+$` takes seconds on 30 chars. V8 can re-run
// an exec on its linear-time engine once that exec has backtracked
// BACKTRACKS_BEFORE_FALLBACK times; this module turns that on.
//
// What it covers: backtracking that V8 counts (alternatives, nested or
// adjacent quantifiers over overlapping classes: the exponential and
// high-degree cases). Measured (Node 20.20, V8 11.3): `^/(a+)+$` on
// '/' + 'a' x 50,000 + '!' 15-20 ms, x 500,000 0.2 s, where plain
// backtracking needs seconds for 26 chars.
// What it does not cover: a greedy loop over a plain class backs off without
// counting backtracks, so a loop that must be retried from many positions
// stays quadratic: `\d+-\d+` (unanchored, as a canary byHeaderPattern is)
// or `.*\d+-\d+.*` (anchored, as route regexes are) on a header of 16 KiB
// of digits, the default maxHeaderBytes, take 120-130 ms (4 KiB: 8 ms). The
// HTTP parser's head limit is what bounds that. The WAF, which runs hundreds
// of unanchored patterns on bodies, routes long and hostile inputs to RE2
// instead (src/filters/waf/regex.ts).
//
// Limits: the flags apply to regexes V8 compiles after they are set (it
// compiles a regex at its first exec and fixes the backtrack limit then: one
// already run before is not protected), and only to regexes the
// linear engine can run: no backreferences, lookarounds, `i` flag or large
// bounded repeats; such a regex keeps plain backtracking.

import v8 from 'node:v8';

/** Backtracks in one exec before V8 re-runs it on the linear engine. */
export const BACKTRACKS_BEFORE_FALLBACK = 50_000;

let flagsSet = false;

/**
 * Turns on V8's linear engine (so the `l` flag can be used to verify that a
 * pattern is linear) and the fallback to it on excessive backtracking.
 * Process-wide and idempotent; must run before the regexes it should protect
 * are created.
 */
export function ensureLinearRegexEngine(): void {
  if (flagsSet) return;
  v8.setFlagsFromString('--enable-experimental-regexp-engine');
  v8.setFlagsFromString('--enable-experimental-regexp-engine-on-excessive-backtracks');
  v8.setFlagsFromString(`--regexp-backtracks-before-fallback=${BACKTRACKS_BEFORE_FALLBACK}`);
  flagsSet = true;
}

ensureLinearRegexEngine();
