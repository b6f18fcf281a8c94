// The `waf` filter: OWASP CRS request rules (phases 1 and 2) on every request,
// with anomaly scoring exactly as CRS computes it (the rules' own setvar
// actions and REQUEST-949), body inspection up to `bodyLimit` bytes, CRS-style
// exclusions, and allow-lists. The body is read before the upstream sees it
// and then handed on unchanged, still streamed (exchange/body.ts); the memory
// cost is at most `bodyLimit` bytes (plus one read) per request being inspected.
import { z } from 'zod';
import { positiveInt, strict } from '../../config/schema.js';
import { readBodyPrefix, ReplayBody, wholeBody } from '../../exchange/body.js';
import { requestHasBody, type Exchange } from '../../exchange/exchange.js';
import { defineFilter, type FilterCompileContext, type FilterInstance, type FilterResult, type Rejection } from '../types.js';
import type { Transaction, Verdict, WafMatch } from './engine.js';
import { addBodyVars, buildHeadVars } from './request-vars.js';
import type { RequestVars } from './types.js';
import { DEFAULT_CRS_DIR, loadCrs, type CrsOptions, type RemoveTarget, type RuleSet } from './ruleset.js';
import { atTurnEnd } from './turn-batch.js';

const level = z.number().int().min(1).max(4);

export const WafFilterSchema = strict({
  type: z.literal('waf'),
  /** block: refuse (403 WAF); detect: log and count what would be blocked, pass it; off: a route turns the global WAF off. */
  mode: z.enum(['block', 'detect', 'off']).default('block'),
  /** CRS blocking paranoia level. */
  paranoia: level.default(1),
  /** CRS detection paranoia level: rules up to it run and are logged; only those up to `paranoia` count towards blocking. */
  detectionParanoia: level.optional(),
  /** CRS inbound anomaly score threshold (critical 5, error 4, warning 3, notice 2). */
  inboundThreshold: positiveInt.default(5),
  /** A CRS `rules/` folder to load instead of the copy meshgate ships (CRS 4.28.0). */
  rulesDir: z.string().min(1).optional(),
  /** Request body bytes inspected. */
  bodyLimit: positiveInt.default(128 * 1024),
  /** A body larger than bodyLimit: reject (413) or inspect its first bodyLimit bytes and pass the rest unseen. */
  bodyOverLimit: z.enum(['reject', 'inspect-partial']).default('reject'),
  /** Exclusions as CRS users write them: rules by id (or "942100-942199") or tag; with targets, only those targets leave the rules. */
  exclusions: z
    .array(
      strict({
        ids: z.array(z.union([z.number().int().positive(), z.string().regex(/^\d+(-\d+)?$/, 'an id or a range like 942100-942199')])).optional(),
        tags: z.array(z.string().min(1)).optional(),
        targets: z.array(z.string().min(1)).optional(),
      }).refine((e) => (e.ids?.length ?? 0) + (e.tags?.length ?? 0) > 0, { error: 'needs ids or tags' }),
    )
    .default([]),
  /** Requests the WAF does not inspect: path prefixes, hosts. */
  allow: strict({ paths: z.array(z.string().startsWith('/')).default([]), hosts: z.array(z.string().min(1)).default([]) }).optional(),
  /**
   * CRS settings crs-setup.conf would make (TX values without `tx.`):
   * allowed_methods, allowed_request_content_type, restricted_extensions, ...
   * meshgate allows PUT, PATCH and DELETE by default (REST APIs); CRS alone does not.
   */
  settings: z.record(z.string().regex(/^[a-z0-9_]+$/i), z.union([z.string(), z.number()])).default({}),
  /**
   * meshgate's two departures from CRS's defaults for a gateway in front of
   * APIs (GATEWAY_DEFAULTS below); false runs CRS exactly as shipped.
   */
  gatewayDefaults: z.boolean().default(true),
});

export type WafConfig = z.output<typeof WafFilterSchema>;

/**
 * Where meshgate departs from CRS's defaults, for a gateway in front of APIs:
 * - REST methods are allowed (CRS allows GET HEAD POST OPTIONS only: 911100
 *   would refuse every PUT, PATCH and DELETE);
 * - 943120 (a session id parameter with no Referer: session fixation through
 *   a link) does not look at JSON body fields: a browser cannot be made to send
 *   a JSON body by a link, and API payloads name session ids freely. The rule
 *   still inspects query strings, forms and multipart fields.
 */
const GATEWAY_DEFAULTS = {
  settings: { allowed_methods: 'GET HEAD POST OPTIONS PUT PATCH DELETE' } as Readonly<Record<string, string>>,
  removeTargets: [{ id: 943120, target: 'ARGS_NAMES:/^json\\./' }] as readonly RemoveTarget[],
};

/** How many bytes of a matched value the audit line keeps. */
const AUDIT_VALUE_BYTES = 120;

// Rule sets are loaded once per distinct set of options and shared by the
// filters (and config generations) that ask for the same: loading CRS parses
// and compiles every rule.
const ruleSets = new Map<string, RuleSet>();

function ruleSetFor(cfg: WafConfig, log: FilterCompileContext['log']): RuleSet {
  const removeIds: (number | string)[] = [];
  const removeTags: string[] = [];
  const removeTargets: RemoveTarget[] = cfg.gatewayDefaults ? [...GATEWAY_DEFAULTS.removeTargets] : [];
  for (const e of cfg.exclusions) {
    if (e.targets === undefined || e.targets.length === 0) {
      if (e.ids) removeIds.push(...e.ids);
      if (e.tags) removeTags.push(...e.tags);
      continue;
    }
    for (const target of e.targets) {
      for (const id of e.ids ?? []) removeTargets.push({ id, target });
      for (const tag of e.tags ?? []) removeTargets.push({ tag, target });
    }
  }
  const opts: CrsOptions = {
    dir: cfg.rulesDir ?? DEFAULT_CRS_DIR,
    blockingParanoiaLevel: cfg.paranoia,
    detectionParanoiaLevel: Math.max(cfg.paranoia, cfg.detectionParanoia ?? cfg.paranoia),
    inboundAnomalyScoreThreshold: cfg.inboundThreshold,
    tx: { ...(cfg.gatewayDefaults ? GATEWAY_DEFAULTS.settings : {}), ...cfg.settings },
    removeIds,
    removeTags,
    removeTargets,
  };
  const key = JSON.stringify(opts);
  let rs = ruleSets.get(key);
  if (!rs) {
    rs = loadCrs(opts);
    if (rs.parseErrors.length > 0) {
      const e = rs.parseErrors[0]!;
      throw new Error(`rulesDir: ${e.file}:${e.line}: ${e.message}`);
    }
    ruleSets.set(key, rs);
    // Reported once per rule set: what runs, and each rule that needs something the engine lacks.
    const t = rs.counts.total;
    log.info({ waf: { version: rs.version, dir: opts.dir, rules: t.rules, full: t.full, partial: t.partial, unsupported: t.unsupported, removed: t.removed } }, 'waf: rule set loaded');
    for (const u of rs.unsupported) log.warn({ waf: u }, `waf: rule ${u.id} not run: ${u.feature}`);
  }
  return rs;
}

/** The family of a rule: its id's thousand (942100 -> "942"). */
export function familyOf(id: number): string {
  return String(Math.floor(id / 1000));
}

function truncate(s: string, n: number): string {
  return s.length > n ? `${s.slice(0, n)}...` : s;
}

/** The request's header fields as received, in order (names keep their case). */
function headerPairs(ex: Exchange): [string, string][] {
  const raw = ex.req.rawHeaders;
  const out: [string, string][] = [];
  for (let i = 0; i < raw.length; i += 2) out.push([raw[i]!, raw[i + 1]!]);
  return out;
}

const CLIENT_GONE: Rejection = { status: 499, flag: 'DC', message: 'client closed the request during inspection' };

export interface WafStats {
  inspected: number;
  blocked: number;
  detected: number;
  bodyRejected: number;
}

class WafFilter implements FilterInstance {
  readonly type = 'waf';
  readonly phase = 'protect' as const;
  readonly replacesGlobal = true;
  readonly stats: WafStats = { inspected: 0, blocked: 0, detected: 0, bodyRejected: 0 };
  private readonly rules: RuleSet | undefined;
  private readonly allowPaths: readonly string[];
  private readonly allowHosts: ReadonlySet<string>;

  constructor(
    private readonly cfg: WafConfig,
    private readonly ctx: FilterCompileContext,
  ) {
    this.rules = cfg.mode === 'off' ? undefined : ruleSetFor(cfg, ctx.log);
    this.allowPaths = cfg.allow?.paths ?? [];
    this.allowHosts = new Set((cfg.allow?.hosts ?? []).map((h) => h.toLowerCase()));
  }

  private allowed(ex: Exchange): boolean {
    if (this.allowHosts.has(ex.host)) return true;
    for (const p of this.allowPaths) if (ex.matchPath.startsWith(p)) return true;
    return false;
  }

  onRequest(ex: Exchange): FilterResult | Promise<FilterResult> {
    const rules = this.rules;
    if (rules === undefined || this.allowed(ex)) return undefined;
    // With the other requests this turn read (turn-batch.ts).
    return atTurnEnd(() => this.inspect(ex, rules));
  }

  private inspect(ex: Exchange, rules: RuleSet): FilterResult | Promise<FilterResult> {
    if (ex.cancel.aborted) return CLIENT_GONE;
    this.stats.inspected++;
    const req = ex.req;
    const head = buildHeadVars({
      method: ex.method,
      target: req.url,
      httpVersion: `HTTP/${req.httpVersion === '2.0' ? '2.0' : req.httpVersion}`,
      headers: headerPairs(ex),
      remoteAddr: ex.clientIp,
      remotePort: req.socket?.remotePort,
      uniqueId: ex.requestId,
    });
    const tx = rules.newTransaction(head);
    if (tx.runPhase(1) !== undefined || !requestHasBody(req)) {
      if (!tx.verdict().blocked) tx.runPhase(2, head);
      return this.judge(ex, tx.verdict());
    }
    // A body that came whole with the head is read where it lies: the request
    // stream keeps every byte for the upstream, nothing is replayed, and the
    // verdict is given at once.
    const whole = wholeBody(ex);
    if (whole !== undefined) return this.inspectBody(ex, head, tx, whole);
    // Read from what upstreams would read (ex.body), so another reader placed earlier is kept in the chain.
    const src = ex.body;
    return readBodyPrefix(src, this.cfg.bodyLimit, ex.cancel).then((prefix) => {
      if (prefix.aborted) return CLIENT_GONE;
      // The upstream gets every byte read here, then the rest of the request.
      ex.bodySource = new ReplayBody(prefix, src);
      const read = prefix.chunks.length === 1 ? prefix.chunks[0]! : Buffer.concat(prefix.chunks, prefix.size);
      // Phase 2 with the other inspections of the turn that read the body's end, as phase 1 was.
      return atTurnEnd(() => (ex.cancel.aborted ? CLIENT_GONE : this.inspectBody(ex, head, tx, read)));
    });
  }

  /** Phase 2 over the body read (all of it, or more than bodyLimit bytes when it is larger). */
  private inspectBody(ex: Exchange, head: RequestVars, tx: Transaction, read: Buffer): FilterResult {
    const limit = this.cfg.bodyLimit;
    const over = read.length > limit;
    if (over && this.cfg.bodyOverLimit === 'reject') {
      this.stats.bodyRejected++;
      return { status: 413, flag: 'WAF', message: `request body larger than the WAF inspects (${limit} bytes)` };
    }
    const body = over ? read.subarray(0, limit) : read;
    const processor = tx.requestBodyProcessor as 'URLENCODED' | 'JSON' | 'MULTIPART' | 'XML' | undefined;
    const vars = addBodyVars(head, body, { truncated: over, processor });
    tx.runPhase(2, vars);
    const verdict = tx.verdict();
    // A body that did not parse went uninspected in part: ModSecurity's recommended rule 200002 refuses it.
    if (!verdict.blocked && !over && vars.scalars.get('REQBODY_ERROR') === '1') {
      return this.judge(ex, verdict, { status: 400, reason: `request body did not parse: ${vars.scalars.get('REQBODY_ERROR_MSG') ?? ''}` });
    }
    return this.judge(ex, verdict);
  }

  private judge(ex: Exchange, v: Verdict, bodyError?: { status: number; reason: string }): FilterResult {
    const route = ex.routeName;
    const metrics = this.ctx.metrics;
    for (const m of v.matches) metrics.wafMatches.add2(route, familyOf(m.id), 1);
    if (!v.blocked && bodyError === undefined) return undefined;
    const top = topMatch(v.matches);
    const family = top ? familyOf(top.id) : bodyError ? 'body' : '';
    const detect = this.cfg.mode === 'detect';
    metrics.wafBlocks.labels(route, family, this.cfg.mode).inc();
    this.audit(ex, v, detect, bodyError?.reason);
    if (detect) {
      this.stats.detected++;
      ex.vars.wafDetected = true;
      return undefined;
    }
    this.stats.blocked++;
    ex.vars.rejectedBy = 'waf';
    ex.vars.wafRules = v.matches.map((m) => m.id);
    const rejection: Rejection = { status: bodyError?.status ?? 403, flag: 'WAF', message: bodyError?.reason ?? 'blocked by WAF' };
    return rejection;
  }

  /** One JSON audit line per blocked (or, in detect mode, would-be-blocked) request. */
  private audit(ex: Exchange, v: Verdict, detectOnly: boolean, reason: string | undefined): void {
    this.ctx.log.warn(
      {
        waf: {
          requestId: ex.requestId,
          route: ex.routeName,
          clientIp: ex.clientIp,
          method: ex.method,
          path: truncate(ex.matchPath, 200),
          action: detectOnly ? 'detect' : 'block',
          score: v.inboundScore,
          detectionScore: v.detectionScore,
          threshold: v.threshold,
          reason,
          rules: v.matches.map((m) => ({
            id: m.id,
            msg: m.msg,
            severity: m.severity,
            variable: m.variable,
            value: truncate(Buffer.from(m.value, 'latin1').toString('utf8'), AUDIT_VALUE_BYTES),
          })),
          droppedMatches: v.droppedMatches || undefined,
        },
      },
      detectOnly ? 'waf: would block (detect mode)' : 'waf: blocked',
    );
  }

  describe(): unknown {
    const rs = this.rules;
    return {
      mode: this.cfg.mode,
      paranoia: this.cfg.paranoia,
      detectionParanoia: this.cfg.detectionParanoia ?? this.cfg.paranoia,
      inboundThreshold: this.cfg.inboundThreshold,
      bodyLimit: this.cfg.bodyLimit,
      bodyOverLimit: this.cfg.bodyOverLimit,
      rules: rs && {
        version: rs.version,
        dir: this.cfg.rulesDir ?? DEFAULT_CRS_DIR,
        counts: rs.counts.total,
        byFamily: rs.counts.byFamily,
        unsupported: rs.unsupported,
        partial: rs.partial,
        ignoredDirectives: rs.ignoredDirectives.length,
      },
      stats: this.stats,
    };
  }
}

/** The match that weighs most in the verdict: the first critical one, else the first. */
function topMatch(matches: readonly WafMatch[]): WafMatch | undefined {
  // 949110 itself (the blocking evaluation) is not an attack family.
  const attacks = matches.filter((m) => m.id < 949000 || m.id >= 950000);
  return attacks.find((m) => m.severity === 'CRITICAL') ?? attacks[0];
}

export const wafFilter = defineFilter({
  type: 'waf',
  schema: WafFilterSchema,
  create: (config, ctx) => new WafFilter(config, ctx),
});
