// CRS loader and rule set compiler: SecLang text (parsed by seclang/parse.ts)
// becomes CompiledRule objects the engine (engine.ts) runs.
//
// Everything that can be decided once is decided here: variables are
// classified (request collection, scalar, TX, MATCHED_*), keys lower-cased,
// key regexes compiled, operators compiled once per distinct argument (and
// shared between rules), transformation pipelines resolved to functions and
// to slots of the per-request transformation cache, macros split into parts,
// skipAfter targets resolved per phase.
//
// Nothing is dropped silently: a rule using a feature the engine does not
// run is listed in `unsupported` and not run; a rule with a target the
// request variables cannot provide (an XPath other than XML:/* and XML://@*,
// GEO, response variables) is listed once in `partial` and runs with its
// other targets.
//
// Exclusions are applied when a rule set is built, from a compiled base that
// `derive()` shares: a per-route rule set costs a filtered copy of the rule
// list, not a recompilation.
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  T_COLLECTION,
  T_MATCHED_VAR,
  T_MATCHED_VAR_NAME,
  T_MATCHED_VARS,
  T_MATCHED_VARS_NAMES,
  T_SCALAR,
  T_TX,
  Transaction,
  lowerAscii,
  startsWithAsciiCi,
  type CompiledRule,
  type CtlOp,
  type Disruptive,
  type EngineRules,
  type KeyMatcher,
  type KeySelector,
  type Macro,
  type MacroPart,
  type RuleOperator,
  type SetVarOp,
  type Target,
  type TargetRef,
} from './engine.js';
import { compileOperator } from './operators.js';
import { compileRx } from './regex.js';
import {
  parseSecLang,
  parseVariables,
  type ActionSpec,
  type ConfigNode,
  type DirectiveNode,
  type ParseIssue,
  type SecActionNode,
  type SecRuleNode,
  type VariableSpec,
} from './seclang/parse.js';
import { TRANSFORMS } from './transforms.js';
import { UnsupportedFeature, type CompiledOperator, type RequestVars, type Transform } from './types.js';

// ---------------------------------------------------------------------------
// Options and results

export interface RemoveTarget {
  /** Rule id, or a range `"942100-942199"`. One of id and tag. */
  id?: number | string;
  tag?: string;
  /** Target as CRS users write it: `ARGS:password`, `REQUEST_COOKIES:/^_ga/`, `REQUEST_HEADERS:User-Agent`, `ARGS`. */
  target: string;
}

export interface RuleSetOptions {
  /** tx.blocking_paranoia_level: 1..4 (default 1). */
  blockingParanoiaLevel?: number;
  /** tx.detection_paranoia_level: >= the blocking level (default: the blocking level). */
  detectionParanoiaLevel?: number;
  /** tx.inbound_anomaly_score_threshold (default 5). */
  inboundAnomalyScoreThreshold?: number;
  /** tx.early_blocking: 949111 may block at the end of phase 1. */
  earlyBlocking?: boolean;
  /**
   * More TX values crs-setup.conf would set (allowed_methods,
   * allowed_request_content_type, restricted_extensions, max_num_args, ...).
   * Keys without the `tx.` prefix. REQUEST-901 keeps its defaults for the rest.
   */
  tx?: Readonly<Record<string, string | number>>;
  /** Rules removed: ids, or ranges `"942000-942999"` / `[942000, 942999]`. */
  removeIds?: readonly (number | string | readonly [number, number])[];
  /** Rules removed by tag (exact, case-sensitive: `attack-sqli`, `paranoia-level/2`). */
  removeTags?: readonly string[];
  /** Targets removed from rules (like SecRuleUpdateTargetById/ByTag with `!`). */
  removeTargets?: readonly RemoveTarget[];
  /** Most matches one request keeps in its verdict (default 100). */
  maxMatches?: number;
}

export interface CrsOptions extends RuleSetOptions {
  /** The CRS `rules/` folder (default: DEFAULT_CRS_DIR). */
  dir?: string;
  /**
   * Which .conf files of the folder to load (default: every REQUEST-*.conf,
   * that is 901..949 plus REQUEST-999-COMMON-EXCEPTIONS-AFTER, which only
   * holds target exclusions for the request rules).
   */
  files?: (name: string) => boolean;
}

export interface RuleIssue {
  id: number;
  file: string;
  line: number;
  feature: string;
}

export interface RuleCount {
  /** SecRule/SecAction statements (chains count once). */
  rules: number;
  /** Run with everything they ask for. */
  full: number;
  /** Run without some targets (see `partial`). */
  partial: number;
  /** Not run (see `unsupported`). */
  unsupported: number;
  /** Left out by exclusions (options, SecRuleRemoveBy* directives). */
  removed: number;
}

export interface RuleSetCounts {
  total: RuleCount;
  byFile: Record<string, RuleCount>;
  /** Keyed by the file's number (`942`) or, for other files, the id's thousand (`942`). */
  byFamily: Record<string, RuleCount>;
  /** Runnable rules per `paranoia-level/N` tag (`none` for untagged ones). */
  byParanoiaLevel: Record<string, number>;
}

export interface RuleSource {
  /** Name used in reports (e.g. `REQUEST-942-APPLICATION-ATTACK-SQLI.conf`). */
  file: string;
  text: string;
}

// ---------------------------------------------------------------------------
// Variables the engine can read

const ENGINE_VARIABLES: Record<string, number> = {
  TX: T_TX,
  MATCHED_VAR: T_MATCHED_VAR,
  MATCHED_VAR_NAME: T_MATCHED_VAR_NAME,
  MATCHED_VARS: T_MATCHED_VARS,
  MATCHED_VARS_NAMES: T_MATCHED_VARS_NAMES,
};

/** Collections the request variables provide (request-vars.ts). */
const REQUEST_COLLECTIONS = new Set([
  'ARGS', 'ARGS_GET', 'ARGS_POST', 'ARGS_NAMES', 'ARGS_GET_NAMES', 'ARGS_POST_NAMES', 'REQUEST_HEADERS',
  'REQUEST_HEADERS_NAMES', 'REQUEST_COOKIES', 'REQUEST_COOKIES_NAMES', 'FILES', 'FILES_NAMES', 'FILES_SIZES',
  'MULTIPART_PART_HEADERS', 'MULTIPART_FILENAME', 'MULTIPART_NAME', 'XML',
]);

/** The XPath expressions the XML collection answers (request-vars.ts builds one entry list per expression). */
const XML_KEYS = new Set(['/*', '//@*']);

/** Scalars the request variables provide. */
const REQUEST_SCALARS = new Set([
  'ARGS_COMBINED_SIZE', 'FILES_COMBINED_SIZE', 'INBOUND_DATA_ERROR', 'REQUEST_METHOD', 'REQUEST_URI',
  'REQUEST_URI_RAW', 'REQUEST_FILENAME', 'REQUEST_BASENAME', 'REQUEST_LINE', 'REQUEST_PROTOCOL', 'QUERY_STRING',
  'REQUEST_BODY', 'REQUEST_BODY_LENGTH', 'REMOTE_ADDR', 'REMOTE_PORT', 'UNIQUE_ID', 'REQBODY_PROCESSOR', 'REQBODY_ERROR',
  'REQBODY_ERROR_MSG', 'REQBODY_PROCESSOR_ERROR', 'REQBODY_PROCESSOR_ERROR_MSG', 'MULTIPART_STRICT_ERROR',
  'MULTIPART_UNMATCHED_BOUNDARY', 'MULTIPART_BOUNDARY_QUOTED', 'MULTIPART_BOUNDARY_WHITESPACE', 'MULTIPART_DATA_AFTER',
  'MULTIPART_DATA_BEFORE', 'MULTIPART_HEADER_FOLDING', 'MULTIPART_LF_LINE', 'MULTIPART_CRLF_LF_LINES',
  'MULTIPART_MISSING_SEMICOLON', 'MULTIPART_SEMICOLON_MISSING', 'MULTIPART_INVALID_QUOTING', 'MULTIPART_INVALID_PART', 'MULTIPART_INVALID_HEADER_FOLDING',
  'MULTIPART_FILE_LIMIT_EXCEEDED',
]);

const SEVERITIES = ['EMERGENCY', 'ALERT', 'CRITICAL', 'ERROR', 'WARNING', 'NOTICE', 'INFO', 'DEBUG'];

/** Actions that only feed logs or features left out on purpose; accepted and ignored. */
const IGNORED_ACTIONS = new Set([
  'auditlog', 'noauditlog', 'rev', 'maturity', 'accuracy', 'expirevar', 'sanitisearg', 'sanitisematched',
  'sanitisematchedbytes', 'sanitiserequestheader', 'sanitiseresponseheader', 'xmlns', 'chain',
]);

// ---------------------------------------------------------------------------
// Compiled base (shared by every rule set derived from it)

interface BaseRule {
  rule: CompiledRule;
  /** Why it does not run (first unsupported feature), if so. */
  unsupported?: string;
  /** Targets it runs without. */
  partial?: string[];
  removedByConfig: boolean;
  family: string;
}

interface Base {
  /** Rules and markers, file order; `rule.index` is the position here. */
  entries: BaseRule[];
  parseErrors: ParseIssue[];
  unknownDirectives: ParseIssue[];
  ignoredDirectives: ParseIssue[];
  files: string[];
  version?: string;
  componentSignatures: string[];
}

class CompileContext {
  readonly operatorCache = new Map<string, CompiledOperator>();
  readonly transformIds = new Map<string, number>();
  readonly keyRegexCache = new Map<string, KeyMatcher>();
  constructor(readonly dataDir: string) {}

  /** Cache slot ids of a pipeline's transformations (one id per transformation name). */
  idsFor(names: readonly string[]): Int32Array {
    const out = new Int32Array(names.length);
    for (let i = 0; i < names.length; i++) {
      let id = this.transformIds.get(names[i]!);
      if (id === undefined) {
        id = this.transformIds.size;
        this.transformIds.set(names[i]!, id);
      }
      out[i] = id;
    }
    return out;
  }

  operator(name: string, arg: string): CompiledOperator {
    const k = `${name.toLowerCase()}\u0000${arg}`;
    const cached = this.operatorCache.get(k);
    if (cached !== undefined) return cached;
    const op: CompiledOperator = compileOperator(name, arg, { dataDir: this.dataDir });
    this.operatorCache.set(k, op);
    return op;
  }

  keyRegex(pattern: string): KeyMatcher {
    let m = this.keyRegexCache.get(pattern);
    if (m === undefined) {
      // Collection keys match case-insensitively, regex keys included (CRS writes TX:/MULTIPART_HEADERS_.../).
      const prefix = literalPrefix(pattern);
      if (prefix !== undefined) {
        // `^json\.`, the form most exclusions take: a case-insensitive prefix test, not a regex run per key.
        m = { test: (s: string) => startsWithAsciiCi(s, prefix) };
      } else {
        const rx = compileRx(`(?i)${pattern}`);
        m = { test: (s: string) => rx.test(s) };
      }
      this.keyRegexCache.set(pattern, m);
    }
    return m;
  }
}

/** The lower-cased literal of a pattern that is `^` and literal chars only (`.` escaped), else undefined. */
export function literalPrefix(pattern: string): string | undefined {
  const m = /^\^((?:[A-Za-z0-9_\-:]|\\[.\-_:])+)$/.exec(pattern);
  return m === null ? undefined : lowerAscii(m[1]!.replace(/\\(.)/g, '$1'));
}

/** Raised while compiling one rule: the rule is reported and left out. */
class RuleUnsupported extends Error {
  constructor(readonly feature: string) {
    super(feature);
  }
}

function unsupported(feature: string): never {
  throw new RuleUnsupported(feature);
}

// ---------------------------------------------------------------------------
// Macros

const MACRO_RE = /%\{([^}]*)\}/g;

/** Splits `a %{tx.x} b` into parts; a string without macros stays a string. */
export function compileMacro(text: string): Macro {
  if (!text.includes('%{')) return text;
  const parts: MacroPart[] = [];
  let last = 0;
  for (const m of text.matchAll(MACRO_RE)) {
    if (m.index! > last) parts.push(text.slice(last, m.index));
    const ref = m[1]!.trim();
    const dot = ref.search(/[.:]/);
    if (dot < 0) parts.push({ name: ref.toUpperCase() });
    else parts.push({ name: ref.slice(0, dot).toUpperCase(), key: lowerAscii(ref.slice(dot + 1)) });
    last = m.index! + m[0].length;
  }
  if (last < text.length) parts.push(text.slice(last));
  return parts;
}

function macroHasRefs(m: Macro): boolean {
  return typeof m !== 'string';
}

// ---------------------------------------------------------------------------
// Targets

// Targets, selectors and rules are always built with every field present, so
// the engine's property reads stay monomorphic.
function keySelector(ctx: CompileContext, v: VariableSpec): KeySelector {
  if (v.key === undefined) return { key: undefined, keyRx: undefined };
  if (v.keyIsRegex) {
    try {
      return { key: undefined, keyRx: ctx.keyRegex(v.key) };
    } catch (err) {
      unsupported(`key regex ${v.raw}: ${(err as Error).message}`);
    }
  }
  return { key: lowerAscii(v.key), keyRx: undefined };
}

function makeTarget(
  kind: number,
  name: string,
  count: boolean,
  raw: string,
  sel: KeySelector,
  excludes: readonly KeySelector[] | undefined,
): Target {
  return { kind, name, count, prefix: `${name}:`, raw, key: sel.key, keyRx: sel.keyRx, excludes };
}

function targetKind(name: string): number | undefined {
  const k = ENGINE_VARIABLES[name];
  if (k !== undefined) return k;
  if (REQUEST_COLLECTIONS.has(name)) return T_COLLECTION;
  if (REQUEST_SCALARS.has(name)) return T_SCALAR;
  return undefined;
}

function compileTargets(ctx: CompileContext, specs: readonly VariableSpec[], missing: string[]): Target[] {
  const targets: Target[] = [];
  for (const v of specs) {
    if (v.exclude) continue;
    const kind = targetKind(v.name);
    if (kind === undefined || (v.name === 'XML' && (v.key === undefined || !XML_KEYS.has(v.key)))) {
      // XML, GEO, persistent collections, response variables...: the rest of the rule still runs.
      missing.push(v.raw);
      continue;
    }
    if (v.key !== undefined && (kind === T_SCALAR || kind === T_MATCHED_VAR || kind === T_MATCHED_VAR_NAME)) {
      unsupported(`key on scalar variable ${v.raw}`);
    }
    targets.push(makeTarget(kind, v.name, v.count, v.raw, keySelector(ctx, v), undefined));
  }
  for (const v of specs) if (v.exclude) excludeFrom(ctx, targets, v);
  return targets;
}

/** Applies `!NAME[:key]` to the targets of a rule (in place). */
function excludeFrom(ctx: CompileContext, targets: Target[], v: VariableSpec): void {
  if (v.key === undefined) {
    for (let i = targets.length - 1; i >= 0; i--) if (targets[i]!.name === v.name) targets.splice(i, 1);
    return;
  }
  const sel = keySelector(ctx, v);
  for (let i = targets.length - 1; i >= 0; i--) {
    const t = targets[i]!;
    if (t.name !== v.name) continue;
    // `!ARGS:foo` against a target written `ARGS:foo`: the target goes.
    if (sel.key !== undefined && t.key === sel.key && t.keyRx === undefined) {
      targets.splice(i, 1);
      continue;
    }
    targets[i] = makeTarget(t.kind, t.name, t.count, t.raw, t, [...(t.excludes ?? []), sel]);
  }
}

function parseTargetRef(ctx: CompileContext, text: string): TargetRef {
  const specs = parseVariables(text);
  if (specs.length !== 1 || specs[0]!.count) throw new SyntaxError(`one target expected, got "${text}"`);
  const v = specs[0]!;
  const sel = keySelector(ctx, v);
  return { name: v.name, key: sel.key, keyRx: sel.keyRx };
}

// ---------------------------------------------------------------------------
// Actions

function parseIdRanges(text: string): [number, number][] {
  const out: [number, number][] = [];
  for (const part of text.split(/[\s,]+/)) {
    if (part === '') continue;
    const m = /^(\d+)(?:-(\d+))?$/.exec(part);
    if (!m) throw new SyntaxError(`bad rule id or range "${part}"`);
    const lo = Number(m[1]);
    const hi = m[2] === undefined ? lo : Number(m[2]);
    out.push(lo <= hi ? [lo, hi] : [hi, lo]);
  }
  if (out.length === 0) throw new SyntaxError('rule id expected');
  return out;
}

function parseSetvar(text: string): SetVarOp {
  let s = text.trim();
  let del = false;
  if (s.startsWith('!')) {
    del = true;
    s = s.slice(1);
  }
  const eq = del ? -1 : s.indexOf('=');
  const name = (eq < 0 ? s : s.slice(0, eq)).trim();
  const dot = name.indexOf('.');
  if (dot <= 0) unsupported(`setvar without a collection: ${text}`);
  const coll = name.slice(0, dot).toLowerCase();
  if (coll !== 'tx') unsupported(`setvar on collection ${coll.toUpperCase()} (persistent collections)`);
  const key = compileMacro(name.slice(dot + 1));
  const lkey = typeof key === 'string' ? lowerAscii(key) : undefined;
  if (del) return { op: 'delete', key, lkey, value: '' };
  if (eq < 0) return { op: 'set', key, lkey, value: '1' };
  const raw = s.slice(eq + 1);
  if (raw.startsWith('+')) return { op: 'add', key, lkey, value: compileMacro(raw.slice(1)) };
  if (raw.startsWith('-')) return { op: 'sub', key, lkey, value: compileMacro(raw.slice(1)) };
  return { op: 'set', key, lkey, value: compileMacro(raw) };
}

function parseCtl(ctx: CompileContext, text: string): CtlOp | undefined {
  const eq = text.indexOf('=');
  if (eq < 0) unsupported(`ctl ${text}`);
  const name = text.slice(0, eq).trim();
  const value = text.slice(eq + 1).trim();
  const onOff = (): boolean => {
    const v = value.toLowerCase();
    if (v !== 'on' && v !== 'off') unsupported(`ctl:${name}=${value}`);
    return v === 'on';
  };
  try {
    switch (name.toLowerCase()) {
      case 'ruleremovebyid':
        return { ctl: 'ruleRemoveById', ranges: parseIdRanges(value) };
      case 'ruleremovebytag':
        return { ctl: 'ruleRemoveByTag', tag: value };
      case 'ruleremovetargetbyid': {
        const semi = value.indexOf(';');
        if (semi < 0) unsupported(`ctl:${name} without a target`);
        return { ctl: 'ruleRemoveTargetById', ranges: parseIdRanges(value.slice(0, semi)), target: parseTargetRef(ctx, value.slice(semi + 1)) };
      }
      case 'ruleremovetargetbytag': {
        const semi = value.indexOf(';');
        if (semi < 0) unsupported(`ctl:${name} without a target`);
        return { ctl: 'ruleRemoveTargetByTag', tag: value.slice(0, semi), target: parseTargetRef(ctx, value.slice(semi + 1)) };
      }
      case 'requestbodyprocessor':
        return { ctl: 'requestBodyProcessor', value: value.toUpperCase() };
      case 'forcerequestbodyvariable':
        return { ctl: 'forceRequestBodyVariable', on: onOff() };
      case 'requestbodyaccess':
        return { ctl: 'requestBodyAccess', on: onOff() };
      case 'ruleengine': {
        const v = value.toLowerCase();
        if (v !== 'on' && v !== 'off' && v !== 'detectiononly') unsupported(`ctl:ruleEngine=${value}`);
        return { ctl: 'ruleEngine', value: v };
      }
      case 'auditengine':
      case 'auditlogparts':
      case 'debugloglevel':
        // Audit logging is not this engine's business.
        return undefined;
      default:
        unsupported(`ctl:${name}`);
    }
  } catch (err) {
    if (err instanceof RuleUnsupported) throw err;
    unsupported(`ctl:${text}: ${(err as Error).message}`);
  }
}

interface ActionResult {
  id?: number;
  phase?: number;
  msg?: Macro;
  logdata?: Macro;
  tags: string[];
  severity?: string;
  ver?: string;
  capture: boolean;
  multiMatch: boolean;
  transforms: string[];
  setvars: SetVarOp[];
  ctls: CtlOp[];
  log?: boolean;
  disruptive?: Disruptive;
  status?: number;
  skip: number;
  skipAfter?: string;
}

function compileActions(ctx: CompileContext, actions: readonly ActionSpec[]): ActionResult {
  const r: ActionResult = { tags: [], capture: false, multiMatch: false, transforms: [], setvars: [], ctls: [], skip: 0 };
  for (const a of actions) {
    const v = a.value ?? '';
    switch (a.name) {
      case 'id': {
        if (!/^\d+$/.test(v)) unsupported(`id:${v}`);
        r.id = Number(v);
        break;
      }
      case 'phase': {
        const p = { request: 2, response: 4, logging: 5 }[v.toLowerCase()] ?? Number(v);
        if (!Number.isInteger(p) || p < 1 || p > 5) unsupported(`phase:${v}`);
        r.phase = p;
        break;
      }
      case 'msg':
        r.msg = compileMacro(v);
        break;
      case 'logdata':
        r.logdata = compileMacro(v);
        break;
      case 'tag':
        r.tags.push(v);
        break;
      case 'severity': {
        const n = /^\d$/.test(v) ? SEVERITIES[Number(v)] : v.toUpperCase();
        if (n === undefined || !SEVERITIES.includes(n)) unsupported(`severity:${v}`);
        r.severity = n;
        break;
      }
      case 'ver':
        r.ver = v;
        break;
      case 'capture':
        r.capture = true;
        break;
      case 'multimatch':
        r.multiMatch = true;
        break;
      case 't': {
        const name = v.toLowerCase();
        if (name === 'none') r.transforms.length = 0;
        else if (!TRANSFORMS.has(name)) unsupported(`t:${v}`);
        else r.transforms.push(name);
        break;
      }
      case 'setvar':
        r.setvars.push(parseSetvar(v));
        break;
      case 'ctl': {
        const c = parseCtl(ctx, v);
        if (c) r.ctls.push(c);
        break;
      }
      case 'pass':
      case 'block':
      case 'deny':
      case 'drop':
        r.disruptive = a.name;
        break;
      case 'allow': {
        const w = v.toLowerCase();
        if (w !== '' && w !== 'phase' && w !== 'request') unsupported(`allow:${v}`);
        r.disruptive = w === '' ? 'allow' : w === 'phase' ? 'allow:phase' : 'allow:request';
        break;
      }
      case 'status': {
        if (!/^\d{3}$/.test(v)) unsupported(`status:${v}`);
        r.status = Number(v);
        break;
      }
      case 'log':
        r.log = true;
        break;
      case 'nolog':
        r.log = false;
        break;
      case 'skip': {
        if (!/^\d+$/.test(v) || Number(v) < 1) unsupported(`skip:${v}`);
        r.skip = Number(v);
        break;
      }
      case 'skipafter':
        if (v === '') unsupported('skipAfter without a marker');
        r.skipAfter = v;
        break;
      default:
        if (IGNORED_ACTIONS.has(a.name)) break;
        unsupported(a.value === undefined ? a.name : `${a.name}:${a.value}`);
    }
  }
  return r;
}

// ---------------------------------------------------------------------------
// Rules

function compileOperatorSpec(ctx: CompileContext, node: SecRuleNode): RuleOperator {
  const { name, arg, negated } = node.operator;
  const compile = (a: string): CompiledOperator => compileOperator(name, a, { dataDir: ctx.dataDir });
  const argMacro = compileMacro(arg);
  try {
    if (!macroHasRefs(argMacro)) {
      return { name, negated, compiled: ctx.operator(name, arg), dynamicArg: undefined, dynamicCache: undefined, compile };
    }
    // Checked once with the macros empty, so an operator the engine lacks is reported at load time.
    try {
      compile(arg.replace(MACRO_RE, ''));
    } catch (err) {
      if (err instanceof UnsupportedFeature) throw err;
    }
    return { name, negated, compiled: undefined, dynamicArg: argMacro, dynamicCache: new Map(), compile };
  } catch (err) {
    if (err instanceof UnsupportedFeature) unsupported(`@${name}: ${err.message}`);
    unsupported(`@${name} ${arg.length > 60 ? `${arg.slice(0, 60)}...` : arg}: ${(err as Error).message}`);
  }
}

const noIds = new Int32Array(0);

function blankRule(index: number, file: string, line: number): CompiledRule {
  return {
    index,
    id: 0,
    phase: 0,
    file,
    line,
    marker: undefined,
    targets: [],
    op: undefined,
    transforms: [],
    transformIds: noIds,
    // Set by the engine; present from the start so every rule has the same shape.
    pipelineId: undefined,
    pipelineTrigger: undefined,
    gate: undefined,
    sig: undefined,
    known: undefined,
    multiMatch: false,
    capture: false,
    setvars: [],
    ctls: [],
    msg: undefined,
    logdata: undefined,
    tags: [],
    severity: undefined,
    ver: undefined,
    paranoiaLevel: undefined,
    log: false,
    disruptive: undefined,
    status: undefined,
    skip: 0,
    skipAfter: undefined,
    chain: undefined,
  };
}

function buildRule(
  ctx: CompileContext,
  node: SecRuleNode | SecActionNode,
  index: number,
  parent: ActionResult | undefined,
  missing: string[],
): CompiledRule {
  const a = compileActions(ctx, node.actions);
  const head = parent ?? a;
  if (!parent) {
    if (a.id === undefined) unsupported('rule without an id');
    if (a.phase === undefined) a.phase = 2; // ModSecurity's default phase
    if (a.phase !== 1 && a.phase !== 2) unsupported(`phase:${a.phase} (only request phases run)`);
  }
  const transforms: Transform[] = a.transforms.map((n) => TRANSFORMS.get(n)!);
  const rule = blankRule(index, node.file, node.line);
  rule.id = head.id ?? 0;
  rule.phase = head.phase ?? 2;
  rule.transforms = transforms;
  rule.transformIds = transforms.length ? ctx.idsFor(a.transforms) : noIds;
  rule.multiMatch = a.multiMatch;
  rule.capture = a.capture;
  rule.setvars = a.setvars;
  rule.ctls = a.ctls;
  rule.tags = a.tags;
  // SecDefaultAction in CRS's setup says `log`; `nolog` turns it off.
  rule.log = a.log ?? true;
  rule.skip = a.skip;
  rule.msg = a.msg;
  rule.logdata = a.logdata;
  rule.severity = a.severity;
  rule.ver = a.ver;
  rule.disruptive = a.disruptive;
  rule.status = a.status;
  rule.skipAfter = a.skipAfter;
  for (const t of a.tags) {
    const m = /^paranoia-level\/(\d)$/.exec(t);
    if (m) rule.paranoiaLevel = Number(m[1]);
  }
  if (node.type === 'rule') {
    const before = missing.length;
    rule.targets = compileTargets(ctx, node.variables, missing);
    if (rule.targets.length === 0) {
      unsupported(missing.length > before ? `no target the engine provides (${missing.slice(before).join(', ')})` : 'no targets left');
    }
    rule.op = compileOperatorSpec(ctx, node);
  }
  if (node.actions.some((x) => x.name === 'chain')) {
    if (!node.chain) unsupported('chain without a chained rule');
    rule.chain = buildRule(ctx, node.chain, index, head, missing);
  }
  return rule;
}

function familyOf(file: string, id: number): string {
  const m = /^(?:REQUEST|RESPONSE)-(\d+)-/.exec(file);
  if (m) return m[1]!;
  return id ? String(Math.floor(id / 1000)) : 'other';
}

function compileBase(sources: readonly RuleSource[], dataDir: string): Base {
  const ctx = new CompileContext(dataDir);
  const base: Base = {
    entries: [],
    parseErrors: [],
    unknownDirectives: [],
    ignoredDirectives: [],
    files: sources.map((s) => s.file),
    componentSignatures: [],
  };
  const byId = new Map<number, BaseRule>();
  const versions = new Map<string, number>();
  for (const src of sources) {
    const parsed = parseSecLang(src.text, src.file);
    base.parseErrors.push(...parsed.errors);
    base.unknownDirectives.push(...parsed.unknownDirectives);
    for (const node of parsed.nodes) compileNode(ctx, base, byId, versions, node);
  }
  let best = 0;
  for (const [v, n] of versions) {
    if (n > best) {
      best = n;
      base.version = v;
    }
  }
  return base;
}

function compileNode(
  ctx: CompileContext,
  base: Base,
  byId: Map<number, BaseRule>,
  versions: Map<string, number>,
  node: ConfigNode,
): void {
  const index = base.entries.length;
  switch (node.type) {
    case 'marker': {
      const rule = blankRule(index, node.file, node.line);
      rule.marker = node.name;
      base.entries.push({ rule, removedByConfig: false, family: familyOf(node.file, 0) });
      return;
    }
    case 'rule':
    case 'action': {
      const missing: string[] = [];
      let entry: BaseRule;
      try {
        const rule = buildRule(ctx, node, index, undefined, missing);
        entry = { rule, removedByConfig: false, family: familyOf(node.file, rule.id) };
        if (missing.length) entry.partial = [...new Set(missing)];
        if (rule.ver) versions.set(rule.ver, (versions.get(rule.ver) ?? 0) + 1);
      } catch (err) {
        if (!(err instanceof RuleUnsupported)) throw err;
        // Keep what identifies the rule, so it can be reported.
        const id = Number(node.actions.find((x) => x.name === 'id')?.value ?? 0) || 0;
        const rule = blankRule(index, node.file, node.line);
        rule.id = id;
        rule.tags = node.actions.filter((x) => x.name === 'tag').map((x) => x.value ?? '');
        entry = { rule, unsupported: err.feature, removedByConfig: false, family: familyOf(node.file, id) };
      }
      base.entries.push(entry);
      if (entry.rule.id) byId.set(entry.rule.id, entry);
      return;
    }
    case 'directive':
      applyDirective(ctx, base, byId, node);
      return;
  }
}

function applyDirective(ctx: CompileContext, base: Base, byId: Map<number, BaseRule>, d: DirectiveNode): void {
  const name = d.name.toLowerCase();
  const issue = (message: string): void => {
    base.ignoredDirectives.push({ file: d.file, line: d.line, message });
  };
  const runnable = (e: BaseRule): boolean => !e.unsupported && e.rule.marker === undefined;
  try {
    switch (name) {
      case 'seccomponentsignature':
        base.componentSignatures.push(d.args.join(' '));
        return;
      case 'secruleupdatetargetbyid':
      case 'secruleupdatetargetbytag': {
        if (d.args.length !== 2) {
          issue(`${d.name} with ${d.args.length} arguments (replacing a target is not supported)`);
          return;
        }
        const specs = parseVariables(d.args[1]!);
        let rules: BaseRule[];
        if (name === 'secruleupdatetargetbyid') {
          rules = [];
          for (const [lo, hi] of parseIdRanges(d.args[0]!)) {
            if (lo === hi) {
              const e = byId.get(lo);
              if (e) rules.push(e);
            } else {
              for (const e of base.entries) if (e.rule.id >= lo && e.rule.id <= hi) rules.push(e);
            }
          }
        } else {
          rules = base.entries.filter((e) => e.rule.tags.includes(d.args[0]!));
        }
        for (const e of rules) {
          if (!runnable(e)) continue;
          const missing: string[] = [];
          const targets = [...e.rule.targets];
          for (const v of specs) {
            if (v.exclude) excludeFrom(ctx, targets, v);
            else targets.push(...compileTargets(ctx, [v], missing));
          }
          e.rule.targets = targets;
          if (missing.length) e.partial = [...new Set([...(e.partial ?? []), ...missing])];
        }
        return;
      }
      case 'secruleremovebyid':
        for (const arg of d.args) {
          for (const [lo, hi] of parseIdRanges(arg)) {
            for (const e of base.entries) if (e.rule.id >= lo && e.rule.id <= hi) e.removedByConfig = true;
          }
        }
        return;
      case 'secruleremovebytag':
        for (const e of base.entries) if (e.rule.tags.includes(d.args[0] ?? '')) e.removedByConfig = true;
        return;
      default:
        issue(`${d.name} is not applied by the engine`);
    }
  } catch (err) {
    issue(`${d.name}: ${(err as Error).message}`);
  }
}

// ---------------------------------------------------------------------------
// Rule sets

/** Options as a rule set applies them (defaults filled in, exclusions accumulated over derive()). */
export interface ResolvedOptions {
  blockingParanoiaLevel: number;
  detectionParanoiaLevel: number;
  inboundAnomalyScoreThreshold: number;
  earlyBlocking: boolean;
  tx: Record<string, string>;
  removeIds: (readonly [number, number])[];
  removeTags: string[];
  removeTargets: RemoveTarget[];
  maxMatches: number;
}

function resolveOptions(prev: ResolvedOptions | undefined, o: RuleSetOptions): ResolvedOptions {
  const level = (v: number | undefined, what: string, dflt: number): number => {
    const n = v ?? dflt;
    if (!Number.isInteger(n) || n < 1 || n > 4) throw new RangeError(`${what} must be 1..4, got ${String(v)}`);
    return n;
  };
  const blocking = level(o.blockingParanoiaLevel, 'blockingParanoiaLevel', prev?.blockingParanoiaLevel ?? 1);
  // A detection level left out follows the blocking level, as CRS's 901125 does.
  const detection = level(
    o.detectionParanoiaLevel,
    'detectionParanoiaLevel',
    o.blockingParanoiaLevel !== undefined ? Math.max(blocking, prev?.detectionParanoiaLevel ?? blocking) : (prev?.detectionParanoiaLevel ?? blocking),
  );
  if (detection < blocking) throw new RangeError(`detectionParanoiaLevel (${detection}) is below blockingParanoiaLevel (${blocking})`);
  const threshold = o.inboundAnomalyScoreThreshold ?? prev?.inboundAnomalyScoreThreshold ?? 5;
  if (!Number.isInteger(threshold) || threshold < 1) throw new RangeError(`inboundAnomalyScoreThreshold must be a positive integer, got ${threshold}`);
  const tx: Record<string, string> = { ...(prev?.tx ?? {}) };
  for (const [k, v] of Object.entries(o.tx ?? {})) tx[lowerAscii(k.replace(/^tx\./i, ''))] = String(v);
  const removeIds = [...(prev?.removeIds ?? [])];
  for (const r of o.removeIds ?? []) {
    if (typeof r === 'number') removeIds.push([r, r]);
    else if (typeof r === 'string') removeIds.push(...parseIdRanges(r));
    else removeIds.push([Math.min(r[0], r[1]), Math.max(r[0], r[1])]);
  }
  const maxMatches = o.maxMatches ?? prev?.maxMatches ?? 100;
  if (!Number.isInteger(maxMatches) || maxMatches < 0) throw new RangeError(`maxMatches must be >= 0, got ${maxMatches}`);
  return {
    blockingParanoiaLevel: blocking,
    detectionParanoiaLevel: detection,
    inboundAnomalyScoreThreshold: threshold,
    earlyBlocking: o.earlyBlocking ?? prev?.earlyBlocking ?? false,
    tx,
    removeIds,
    removeTags: [...(prev?.removeTags ?? []), ...(o.removeTags ?? [])],
    removeTargets: [...(prev?.removeTargets ?? []), ...(o.removeTargets ?? [])],
    maxMatches,
  };
}

function emptyCount(): RuleCount {
  return { rules: 0, full: 0, partial: 0, unsupported: 0, removed: 0 };
}

export class RuleSet implements EngineRules {
  /** Rules that run (chain starters; markers, removed and unsupported rules left out), in file order. */
  readonly rules: readonly CompiledRule[];
  /** Rules not run, with the first feature the engine lacks. */
  readonly unsupported: readonly RuleIssue[];
  /** Rules run without some targets, once per rule (feature: the targets left out). */
  readonly partial: readonly RuleIssue[];
  /** The rules' `ver:` (e.g. `OWASP_CRS/4.28.0`). */
  readonly version: string | undefined;
  readonly counts: RuleSetCounts;
  readonly parseErrors: readonly ParseIssue[];
  readonly unknownDirectives: readonly ParseIssue[];
  /** Directives read but not applied (SecDefaultAction, SecRuleEngine, ...). */
  readonly ignoredDirectives: readonly ParseIssue[];
  readonly files: readonly string[];
  readonly options: Readonly<ResolvedOptions>;
  readonly txSeed: readonly (readonly [string, string, string])[];
  readonly baseSize: number;
  readonly maxMatches: number;

  private readonly phases = new Map<number, { rules: readonly CompiledRule[]; skipAfterTarget: Int32Array }>();
  private readonly byId = new Map<number, CompiledRule>();
  private readonly byTag = new Map<string, CompiledRule[]>();

  /** Use loadCrs() or compileRules(); derive() for per-route variants. */
  private constructor(
    private readonly base: Base,
    options: ResolvedOptions,
  ) {
    this.options = options;
    this.baseSize = base.entries.length;
    this.maxMatches = options.maxMatches;
    this.version = base.version;
    this.parseErrors = base.parseErrors;
    this.unknownDirectives = base.unknownDirectives;
    this.ignoredDirectives = base.ignoredDirectives;
    this.files = base.files;

    const ctx = new CompileContext('');
    const removals = parseRemovals(options.removeTargets);
    const removedId = (id: number): boolean => options.removeIds.some(([lo, hi]) => id >= lo && id <= hi);
    const unsupportedList: RuleIssue[] = [];
    const partialList: RuleIssue[] = [];
    const counts: RuleSetCounts = { total: emptyCount(), byFile: {}, byFamily: {}, byParanoiaLevel: {} };
    const all: CompiledRule[] = [];
    const runnable: CompiledRule[] = [];
    for (const e of base.entries) {
      let r = e.rule;
      if (r.marker !== undefined) {
        all.push(r);
        continue;
      }
      const fileCount = (counts.byFile[r.file] ??= emptyCount());
      const famCount = (counts.byFamily[e.family] ??= emptyCount());
      const bump = (k: keyof RuleCount): void => {
        counts.total[k]++;
        fileCount[k]++;
        famCount[k]++;
      };
      bump('rules');
      if (e.unsupported) {
        bump('unsupported');
        unsupportedList.push({ id: r.id, file: r.file, line: r.line, feature: e.unsupported });
        continue;
      }
      if (e.removedByConfig || removedId(r.id) || r.tags.some((t) => options.removeTags.includes(t))) {
        bump('removed');
        continue;
      }
      if (e.partial) partialList.push({ id: r.id, file: r.file, line: r.line, feature: e.partial.join(', ') });
      bump(e.partial ? 'partial' : 'full');
      r = this.withTargetRemovals(ctx, r, removals);
      all.push(r);
      runnable.push(r);
      const pl = r.paranoiaLevel === undefined ? 'none' : String(r.paranoiaLevel);
      counts.byParanoiaLevel[pl] = (counts.byParanoiaLevel[pl] ?? 0) + 1;
      if (r.id) this.byId.set(r.id, r);
      for (const t of r.tags) {
        const l = this.byTag.get(t);
        if (l) l.push(r);
        else this.byTag.set(t, [r]);
      }
    }
    this.rules = runnable;
    this.unsupported = unsupportedList;
    this.partial = partialList;
    this.counts = counts;
    for (const p of [1, 2]) this.phases.set(p, buildPhase(all.filter((r) => r.marker !== undefined || r.phase === p)));
    this.txSeed = buildSeed(options, base.version);
  }

  /** Builds a rule set from compiled-once base rules (used by loadCrs/compileRules). */
  static fromSources(sources: readonly RuleSource[], dataDir: string, opts: RuleSetOptions = {}): RuleSet {
    return new RuleSet(compileBase(sources, dataDir), resolveOptions(undefined, opts));
  }

  /**
   * A rule set from the same compiled rules with more exclusions and/or
   * other levels: exclusions add to this set's, scalar options replace them.
   * Costs a pass over the rule list; nothing is recompiled.
   */
  derive(opts: RuleSetOptions): RuleSet {
    return new RuleSet(this.base, resolveOptions(this.options, opts));
  }

  newTransaction(vars: RequestVars): Transaction {
    return new Transaction(this, vars);
  }

  phase(n: number): { rules: readonly CompiledRule[]; skipAfterTarget: Int32Array } {
    return this.phases.get(n) ?? EMPTY_PHASE;
  }

  rulesById(lo: number, hi: number): readonly CompiledRule[] {
    if (lo === hi) {
      const r = this.byId.get(lo);
      return r ? [r] : [];
    }
    return this.rules.filter((r) => r.id >= lo && r.id <= hi);
  }

  rulesByTag(tag: string): readonly CompiledRule[] {
    return this.byTag.get(tag) ?? [];
  }

  private withTargetRemovals(ctx: CompileContext, r: CompiledRule, removals: readonly ParsedRemoval[]): CompiledRule {
    let targets: Target[] | undefined;
    for (const x of removals) {
      const hit = x.ranges !== undefined ? x.ranges.some(([lo, hi]) => r.id >= lo && r.id <= hi) : r.tags.includes(x.tag!);
      if (!hit) continue;
      targets ??= [...r.targets];
      for (const v of x.specs) excludeFrom(ctx, targets, v);
    }
    if (!targets) return r;
    // Same construction as every other rule, so the engine sees one object shape.
    return Object.assign(blankRule(r.index, r.file, r.line), r, { targets });
  }
}

interface ParsedRemoval {
  ranges: [number, number][] | undefined;
  tag: string | undefined;
  specs: VariableSpec[];
}

function parseRemovals(list: readonly RemoveTarget[]): ParsedRemoval[] {
  return list.map((x) => {
    if ((x.id === undefined) === (x.tag === undefined)) throw new TypeError(`removeTargets: give one of id and tag (${x.target})`);
    const specs = parseVariables(x.target).map((v) => ({ ...v, exclude: true }));
    return { ranges: x.id !== undefined ? parseIdRanges(String(x.id)) : undefined, tag: x.tag, specs };
  });
}

const EMPTY_PHASE = { rules: [] as readonly CompiledRule[], skipAfterTarget: new Int32Array(0) };

/** Where each rule's skipAfter lands: the position of the next marker (or rule id) of that name, else the end. */
function buildPhase(rules: CompiledRule[]): { rules: readonly CompiledRule[]; skipAfterTarget: Int32Array } {
  const n = rules.length;
  const target = new Int32Array(n).fill(n);
  const next = new Map<string, number>();
  for (let i = n - 1; i >= 0; i--) {
    const r = rules[i]!;
    if (r.skipAfter !== undefined) target[i] = next.get(r.skipAfter) ?? n;
    if (r.marker !== undefined) next.set(r.marker, i);
    else if (r.id) next.set(String(r.id), i + 1);
  }
  return { rules, skipAfterTarget: target };
}

function buildSeed(o: ResolvedOptions, version: string | undefined): (readonly [string, string, string])[] {
  const values = new Map<string, string>(Object.entries(o.tx));
  const m = version ? /(\d+)\.(\d+)\.(\d+)/.exec(version) : null;
  // crs-setup.conf's version stamp (4.28.0 -> 4280); REQUEST-901 refuses to run without one.
  if (!values.has('crs_setup_version')) values.set('crs_setup_version', m ? `${m[1]}${m[2]}${m[3]}` : '1');
  values.set('blocking_paranoia_level', String(o.blockingParanoiaLevel));
  values.set('detection_paranoia_level', String(o.detectionParanoiaLevel));
  values.set('inbound_anomaly_score_threshold', String(o.inboundAnomalyScoreThreshold));
  if (o.earlyBlocking) values.set('early_blocking', '1');
  return [...values].map(([k, v]) => [k, k, v] as const);
}

// ---------------------------------------------------------------------------
// Entry points

function findProjectRoot(from: string): string {
  let dir = from;
  for (;;) {
    if (existsSync(join(dir, 'package.json'))) return dir;
    const up = dirname(dir);
    if (up === dir) return from;
    dir = up;
  }
}

/** Where the CRS copy the project ships lives: `<project>/vendor/crs/rules`. */
export const DEFAULT_CRS_DIR = join(findProjectRoot(dirname(fileURLToPath(import.meta.url))), 'vendor', 'crs', 'rules');

const DEFAULT_FILES = (name: string): boolean => /^REQUEST-\d+-.*\.conf$/.test(name);

/** Reads and compiles CRS's request rule files from `opts.dir`. */
export function loadCrs(opts: CrsOptions = {}): RuleSet {
  const dir = resolve(opts.dir ?? DEFAULT_CRS_DIR);
  const pick = opts.files ?? DEFAULT_FILES;
  const files = readdirSync(dir)
    .filter((f) => f.endsWith('.conf') && pick(f))
    .sort();
  if (files.length === 0) throw new Error(`no rule files in ${dir}`);
  // Rule files are bytes; latin1 keeps one char per byte for the regexes and phrases.
  const sources = files.map((file) => ({ file, text: readFileSync(join(dir, file), 'latin1') }));
  return RuleSet.fromSources(sources, dir, opts);
}

/** Compiles SecLang text (e.g. a rule file written in a test, or local rules next to CRS). */
export function compileRules(sources: readonly RuleSource[], opts: RuleSetOptions & { dataDir?: string } = {}): RuleSet {
  return RuleSet.fromSources(sources, opts.dataDir ?? process.cwd(), opts);
}
