// Full-link grey release. A tag header (Higress/MSE: x-mse-tag) names a
// release lane; instances carry their lane in metadata. A tagged request goes
// to instances of its tag, else to untagged (baseline) instances; an untagged
// request goes to untagged instances. The tag travels upstream in the same
// header so every next hop can do the same. A route may also set the tag
// itself from the request (Higress traffic-tag).
import { murmur3 } from '../balancing/hash.js';
import type { Instance } from '../balancing/instance.js';
import type { GreyConfig } from '../config/schema.js';
import type { Exchange, HeaderOps } from '../exchange/exchange.js';
import { compileStringMatch, type StringMatcher } from './match.js';

interface Condition {
  readonly kind: 'header' | 'query' | 'cookie';
  readonly name: string;
  readonly test: StringMatcher;
}

export interface TagRule {
  readonly tag: string;
  readonly conditions: readonly Condition[];
  /**
   * Rules without conditions: the request's random draw (0..100) must fall in
   * [lo, hi). Bands of successive rules do not overlap, so 30 and 20 tag 30%
   * and 20% of the traffic (Higress weightGroups).
   */
  readonly lo: number;
  readonly hi: number;
  /** Rules with conditions and a percentage: hash(condition values) % 100 < pct (sticky per value). */
  readonly pct: number | undefined;
  /** Sets the tag header upstream (built once). */
  readonly ops: HeaderOps;
}

export interface CompiledGrey {
  /** Distinguishes view caches of different grey configs (header + metadata keys). */
  readonly id: string;
  readonly header: string;
  /** Instance metadata keys that carry the tag, in order of preference. */
  readonly keys: readonly string[];
  readonly rules: readonly TagRule[];
}

export function compileGrey(cfg: GreyConfig, path = 'grey'): CompiledGrey {
  const header = cfg.header.toLowerCase();
  const keys = cfg.metadataKey !== undefined ? [cfg.metadataKey] : header === 'tag' ? ['tag'] : [header, 'tag'];
  let band = 0;
  const rules = (cfg.setTag ?? []).map((r, i): TagRule => {
    const conditions: Condition[] = [];
    for (const kind of ['header', 'query', 'cookie'] as const) {
      for (const [name, m] of Object.entries(r[kind] ?? {})) {
        let test: StringMatcher;
        try {
          test = compileStringMatch(m);
        } catch (e) {
          throw new Error(`${path}.setTag[${i}].${kind}.${name}: ${(e as Error).message}`);
        }
        conditions.push({ kind, name: kind === 'header' ? name.toLowerCase() : name, test });
      }
    }
    let lo = 0;
    let hi = 100;
    if (conditions.length === 0 && r.percentage !== undefined) {
      lo = band;
      hi = band + r.percentage;
      band = hi;
      if (band > 100) throw new Error(`${path}.setTag[${i}].percentage: percentages of rules without conditions add up to ${band}, more than 100`);
    }
    return {
      tag: r.tag,
      conditions,
      lo,
      hi,
      pct: conditions.length > 0 ? r.percentage : undefined,
      ops: { set: { [cfg.header]: r.tag } },
    };
  });
  return { id: `${header}\u0000${keys.join(',')}`, header, keys, rules };
}

function valueOf(ex: Pick<Exchange, 'header' | 'query' | 'cookie'>, c: Condition): string | undefined {
  return c.kind === 'header' ? ex.header(c.name) : c.kind === 'query' ? ex.query(c.name) : ex.cookie(c.name);
}

/** The first rule that tags this request, if any. `random` draws in [0, 1). */
export function matchTagRule(
  grey: CompiledGrey,
  ex: Pick<Exchange, 'header' | 'query' | 'cookie'>,
  random: () => number = Math.random,
): TagRule | undefined {
  let draw = -1;
  for (const rule of grey.rules) {
    const conds = rule.conditions;
    if (conds.length === 0) {
      if (rule.lo === 0 && rule.hi === 100) return rule;
      if (draw < 0) draw = random() * 100;
      if (draw >= rule.lo && draw < rule.hi) return rule;
      continue;
    }
    let ok = true;
    for (let i = 0; i < conds.length && ok; i++) ok = conds[i]!.test(valueOf(ex, conds[i]!));
    if (!ok) continue;
    if (rule.pct !== undefined) {
      let key = '';
      for (const c of conds) key += `${valueOf(ex, c) ?? ''}\u0000`;
      if (murmur3(key) % 100 >= rule.pct) continue;
    }
    return rule;
  }
  return undefined;
}

/**
 * The request path's grey hook: decide the request's tag (the tag header it
 * carries wins, else the route's setTag rules) and make sure it goes upstream.
 * Instance selection (select.ts) reads the result.
 */
export function applyGrey(grey: CompiledGrey | undefined, ex: Exchange): void {
  if (grey === undefined) return;
  ex.vars.grey = grey;
  const given = ex.header(grey.header);
  if (given !== undefined && given !== '') {
    // Forwarded as the client sent it (adapters pass end-to-end headers on).
    ex.tag = given;
    return;
  }
  const rule = grey.rules.length > 0 ? matchTagRule(grey, ex) : undefined;
  if (rule !== undefined) {
    ex.tag = rule.tag;
    ex.requestHeaderOps.push(rule.ops);
  }
}

/** The grey config applied to this exchange, if its route has one. */
export function greyOf(ex: Exchange): CompiledGrey | undefined {
  return ex.vars.grey as CompiledGrey | undefined;
}

/** The tag an instance carries ('' and absent both mean untagged). */
export function instanceTag(inst: Instance, keys: readonly string[]): string | undefined {
  for (let i = 0; i < keys.length; i++) {
    const v = inst.metadata[keys[i]!];
    if (v !== undefined && v !== '') return v;
  }
  return undefined;
}
