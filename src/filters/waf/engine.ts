// Rule engine: runs a compiled rule set (see ruleset.ts) over one request.
//
// Semantics follow ModSecurity v3 / Coraza, which CRS is written for:
// - rules run in file order within a phase; SecMarker, skip and skipAfter
//   steer the flow (skipAfter jumps are precomputed, so skipping the rules
//   above the paranoia level costs one array read per skip rule);
// - a rule's targets are expanded to values, each value is transformed and
//   given to the operator; every matching value sets MATCHED_VAR(S), the
//   captures (with `capture`) and runs the rule's setvar actions, whether or
//   not the rest of the chain matches later (CRS's scoring relies on that:
//   a rule matching two arguments adds its score twice);
// - when a rule matched, its chained child runs, then the ctl actions, and
//   for the chain starter: logging, skip/skipAfter and the disruptive action;
// - an `@rx` whose pattern has required literals (prefilter.ts), or a `@pm`,
//   runs only on values that contain one of them: one Aho-Corasick scan per
//   distinct value tells which operators can match it, the rest are skipped
//   (same verdicts);
// - `block` is what SecDefaultAction says: CRS's setup makes it `pass`, the
//   blocking decision is made by 949110's `deny` on the anomaly score the
//   rules themselves summed up. The engine never computes a score.
import type { PrefilteredOperator } from './operators.js';
import { bytePresence, factorIndex, factorSetId, isPlainPresence, meetsClauses, type FactorIndex } from './prefilter.js';
import { hasSpacePair, pipelineTrigger, transformTrigger, type TransformTrigger } from './transforms.js';
import type { CompiledOperator, RequestVars, Transform, VarEntry } from './types.js';

// ---------------------------------------------------------------------------
// Compiled rule model (built by ruleset.ts, read here)

/** A macro-expandable string: a literal, or literal/reference parts. */
export type Macro = string | readonly MacroPart[];
export type MacroPart = string | MacroRef;
export interface MacroRef {
  /** Upper-cased variable (`TX`, `MATCHED_VAR`, `REQUEST_HEADERS`). */
  name: string;
  /** Lower-cased key (`critical_anomaly_score`), if any. */
  key?: string;
}

/** Matches collection keys (`ARGS:/^id_/`); case-insensitive. */
export interface KeyMatcher {
  test(name: string): boolean;
}

export interface KeySelector {
  /** Lower-cased literal key. */
  key: string | undefined;
  keyRx: KeyMatcher | undefined;
}

export const T_SCALAR = 0;
export const T_COLLECTION = 1;
export const T_TX = 2;
export const T_MATCHED_VAR = 3;
export const T_MATCHED_VAR_NAME = 4;
export const T_MATCHED_VARS = 5;
export const T_MATCHED_VARS_NAMES = 6;

export interface Target extends KeySelector {
  kind: number;
  /** Upper-cased variable name. */
  name: string;
  /** `&NAME`: one value, the count. */
  count: boolean;
  /** Keys left out by `!NAME:key` (static) exclusions. */
  excludes: readonly KeySelector[] | undefined;
  /** `NAME:` — the prefix of MATCHED_VAR_NAME for this target's values. */
  prefix: string;
  /** As written (`REQUEST_HEADERS:User-Agent`), for messages. */
  raw: string;
}

/** setvar on TX; `lkey` is the lower-cased key when it has no macro. */
export interface SetVarOp {
  op: 'set' | 'add' | 'sub' | 'delete';
  key: Macro;
  lkey: string | undefined;
  value: Macro;
}

/** A target removal as ctl and the exclusion options write it: `ARGS`, `ARGS:foo`, `ARGS:/^x/`. */
export interface TargetRef extends KeySelector {
  name: string;
}

export type CtlOp =
  | { ctl: 'ruleRemoveById'; ranges: readonly (readonly [number, number])[] }
  | { ctl: 'ruleRemoveByTag'; tag: string }
  | { ctl: 'ruleRemoveTargetById'; ranges: readonly (readonly [number, number])[]; target: TargetRef }
  | { ctl: 'ruleRemoveTargetByTag'; tag: string; target: TargetRef }
  | { ctl: 'requestBodyProcessor'; value: string }
  | { ctl: 'forceRequestBodyVariable'; on: boolean }
  | { ctl: 'requestBodyAccess'; on: boolean }
  | { ctl: 'ruleEngine'; value: 'on' | 'off' | 'detectiononly' };

export interface RuleOperator {
  /** Name as written after `@`. */
  name: string;
  negated: boolean;
  /** Compiled once when the argument has no macro. */
  compiled: CompiledOperator | undefined;
  /** Argument with macros: compiled per distinct expansion (see `dynamicCache`). */
  dynamicArg: Macro | undefined;
  dynamicCache: Map<string, CompiledOperator | null> | undefined;
  compile: (arg: string) => CompiledOperator;
}

export type Disruptive = 'pass' | 'block' | 'deny' | 'drop' | 'allow' | 'allow:phase' | 'allow:request';

export interface CompiledRule {
  /** Position in the base rule list; runtime removals are indexed by it. */
  index: number;
  id: number;
  phase: number;
  file: string;
  line: number;
  /** Set on SecMarker entries (which have no operator and do nothing). */
  marker: string | undefined;
  targets: readonly Target[];
  /** Undefined for SecAction (always matches once). */
  op: RuleOperator | undefined;
  transforms: readonly Transform[];
  /** transformIds[i]: which transformation transforms[i] is (its slot in the per-request cache). */
  transformIds: Int32Array;
  /** Set by the engine: the id of the transformation pipeline (rules with the same transformIds share it). */
  pipelineId: number | undefined;
  /** Set by the engine: what the pipeline needs to change a value beyond case (transforms.ts pipelineTrigger). */
  pipelineTrigger: TransformTrigger | undefined;
  /**
   * Set by the engine on chain starters whose targets are plain collections
   * and scalars and whose operator has a prefilter: the ids of the value
   * lists the rule reads (`targets`, see targetIds) and the pipeline they go
   * through (`k`), so that a few lookups per request can tell that no value
   * could match (see Transaction.ruleMayMatch).
   */
  gate: RuleGate | undefined;
  /**
   * Set by the engine on rules with a static operator: the id of what the
   * rule computes for one value (pipeline, operator, multiMatch), under
   * which a value remembers that it does not match (Slots.nm).
   */
  sig: number | undefined;
  /** Set by the engine with `sig`: per target, the id of its per-request known-bits cache (see PhasePlan, Transaction.groupKnown); null when a target has none (count, TX, MATCHED_*). */
  known: readonly KnownTarget[] | null | undefined;
  multiMatch: boolean;
  capture: boolean;
  setvars: readonly SetVarOp[];
  ctls: readonly CtlOp[];
  msg: Macro | undefined;
  logdata: Macro | undefined;
  tags: readonly string[];
  severity: string | undefined;
  ver: string | undefined;
  paranoiaLevel: number | undefined;
  log: boolean;
  disruptive: Disruptive | undefined;
  status: number | undefined;
  skip: number;
  skipAfter: string | undefined;
  chain: CompiledRule | undefined;
}

/** What a transaction needs from the rule set (implemented by RuleSet in ruleset.ts). */
export interface EngineRules {
  /** Rules and markers of a phase in order, with where each skipAfter lands. */
  phase(n: number): { rules: readonly CompiledRule[]; skipAfterTarget: Int32Array };
  /** Size of the base rule list (runtime removal arrays are this long). */
  readonly baseSize: number;
  rulesById(lo: number, hi: number): readonly CompiledRule[];
  rulesByTag(tag: string): readonly CompiledRule[];
  /** Initial TX values (lower-cased key, key as written, value). */
  readonly txSeed: readonly (readonly [string, string, string])[];
  readonly maxMatches: number;
}

// ---------------------------------------------------------------------------
// Results

export interface WafMatch {
  id: number;
  msg: string;
  severity?: string;
  tags: readonly string[];
  file: string;
  line: number;
  /** The matched variable, e.g. `ARGS:id` (for a chain: the chain starter's). */
  variable: string;
  /** The value as received (before transformations), truncated to 200 bytes. */
  value: string;
  /** logdata, expanded. */
  data: string;
}

export interface Interruption {
  ruleId: number;
  action: 'deny' | 'drop';
  status: number;
}

export interface Verdict {
  /** TX:blocking_inbound_anomaly_score as the rules left it. */
  inboundScore: number;
  /** TX:detection_inbound_anomaly_score (includes rules above the blocking level). */
  detectionScore: number;
  /** TX:inbound_anomaly_score_threshold. */
  threshold: number;
  /** A disruptive rule (949110, or 949111 with early blocking) stopped the request. */
  blocked: boolean;
  interruption?: Interruption;
  matches: WafMatch[];
  /** Matches left out of `matches` beyond the cap. */
  droppedMatches: number;
  /** Set by ctl:requestBodyProcessor: the body processor phase 2 must use. */
  requestBodyProcessor?: string;
  /** Set by ctl:forceRequestBodyVariable (CRS 901340 turns it on for bodies no processor handles). */
  forceRequestBodyVariable: boolean;
}

// ---------------------------------------------------------------------------

const MAX_VALUE_IN_MATCH = 200;
/** Distinct macro-expanded operator arguments kept per rule (the argument may come from the request). */
const MAX_DYNAMIC_OPERATORS = 64;

interface TxVar {
  name: string;
  value: string;
}

type TxEntries = ReadonlyMap<string, Readonly<TxVar>>;

/**
 * A transaction's TX collection: the entries it wrote over a base it shares
 * with every other transaction (the prologue's, see Prologue.map), so that
 * starting a transaction copies nothing. Entries are never changed in place,
 * only replaced. Iteration order is a Map's: the base's keys in their order,
 * then the keys added since. Deleting a base key first copies the base, so a
 * key set again after its deletion comes last, as in a Map.
 */
class TxVars {
  /** Entries written by this transaction (over the base's, or new keys). */
  private own = new Map<string, Readonly<TxVar>>();
  constructor(private base: TxEntries) {}

  get(k: string): Readonly<TxVar> | undefined {
    return this.own.get(k) ?? this.base.get(k);
  }

  set(k: string, e: Readonly<TxVar>): void {
    this.own.set(k, e);
  }

  delete(k: string): void {
    // A base key: own takes over the whole collection first, so that k set again comes last.
    if (this.base.has(k)) this.restore(this.snapshot());
    this.own.delete(k);
  }

  /** Every entry, in a Map's order (Map.forEach underneath: no entry arrays or iterators per request). */
  forEach(fn: (e: Readonly<TxVar>, key: string) => void): void {
    const own = this.own;
    const base = this.base;
    base.forEach((be, k) => fn(own.get(k) ?? be, k));
    own.forEach((o, k) => {
      if (!base.has(k)) fn(o, k);
    });
  }

  /**
   * The entries whose name `rx` matches, in forEach's order. The base never
   * changes and an entry written over a base key keeps the base entry's name
   * (runSetvars; captures are named by their key), so the base keys that match
   * are found once per base and matcher (CRS's TX:/^header_name_920450_/ and
   * TX:/MULTIPART_HEADERS_CONTENT_TYPES_*\/ test about 50 names otherwise, per request).
   */
  forEachMatching(rx: KeyMatcher, fn: (e: Readonly<TxVar>, key: string) => void): void {
    const own = this.own;
    const base = this.base;
    const keys = baseKeysMatching(base, rx);
    for (let i = 0; i < keys.length; i++) {
      const k = keys[i]!;
      fn(own.get(k) ?? base.get(k)!, k);
    }
    if (own.size === 0) return;
    own.forEach((o, k) => {
      if (!base.has(k) && rx.test(o.name)) fn(o, k);
    });
  }

  /** The collection as it is now (also for restore()). */
  snapshot(): Map<string, Readonly<TxVar>> {
    const m = new Map<string, Readonly<TxVar>>();
    this.forEach((e, k) => m.set(k, e));
    return m;
  }

  restore(s: TxEntries): void {
    this.own = new Map(s);
    this.base = EMPTY_TX;
  }
}

const EMPTY_TX: TxEntries = new Map();

/** Per base map (a prologue's, never changed) and key matcher: the base keys whose entry's name it matches, in the map's order. */
const baseMatches = new WeakMap<TxEntries, Map<KeyMatcher, readonly string[]>>();

function baseKeysMatching(base: TxEntries, rx: KeyMatcher): readonly string[] {
  if (base.size === 0) return EMPTY_KEYS;
  let byRx = baseMatches.get(base);
  if (byRx === undefined) baseMatches.set(base, (byRx = new Map()));
  let keys = byRx.get(rx);
  if (keys === undefined) {
    const found: string[] = [];
    base.forEach((e, k) => {
      if (rx.test(e.name)) found.push(k);
    });
    byRx.set(rx, (keys = found));
  }
  return keys;
}

const EMPTY_KEYS: readonly string[] = [];

interface RuntimeRemoval extends KeySelector {
  name: string;
}

const EMPTY: readonly VarEntry[] = [];

/** What the transaction knows about one distinct string. */
class Slots {
  /** The SlotCache that made it (undefined: a transaction's own); only those are kept on entries (see entrySlots). */
  constructor(readonly owner: SlotCache | undefined) {}
  /** out[id]: the string after transformation `id`. */
  readonly out: (string | undefined)[] = [];
  /** The ids of the `@rx`/`@pm` factor sets whose factors it contains (see prefilter.ts); scanned when first needed. */
  hits: Bits | null | undefined = undefined;
  /** Its byte-presence bitmap (8 words, see prefilter.ts bytePresence); null: it has chars above 0xff; computed when first needed. */
  pres: Int32Array | null | undefined = undefined;
  /** Whether it has a space followed by a space, `/` or `(` (transforms.ts hasSpacePair), when first needed. */
  spacePair: boolean | undefined = undefined;
  /**
   * What operators answered for this string, as pairs: memoId, answer (null:
   * no match). A few per string: an array indexed by memoId would hold
   * hundreds of holes, kept as long as the string is cached.
   */
  ops: (number | readonly string[] | null)[] | undefined = undefined;
  /** pipeOut[p]: the string after the whole pipeline `p` (see CompiledRule.pipelineId); pipeSlots[p]: its slots. */
  pipeOut: (string | undefined)[] | undefined = undefined;
  pipeSlots: (Slots | undefined)[] | undefined = undefined;
  /**
   * The rule signatures (CompiledRule.sig) this string is known not to
   * match: test() answered false for it, which is a pure function of the
   * string. A rule whose every value has its bit is skipped whole.
   */
  nm: Bits | undefined = undefined;
  /** How many times `nm` has gained bits (see SlotCache.knownFor): it only grows. */
  nmv = 0;
  /** The string itself, when it is found under a sample of it (see slotKey). */
  long: string | undefined = undefined;
}

/** A value list's known set, remembered by its Slots (see SlotCache.knownFor). */
interface KnownList {
  key: readonly object[];
  tag: number;
  nmv: number;
  bits: Bits | null;
}

/** Lists whose known sets a SlotCache remembers. */
const KNOWN_LISTS = 8;
/** Shorter lists are ANDed every time: comparing them costs about as much. */
const KNOWN_LIST_MIN = 8;
/**
 * Longer lists are ANDed every time: what the remembered lists keep alive
 * (their values' Slots, with the transformed copies) stays within
 * KNOWN_LISTS x this many values, of which most the SlotCache keeps anyway.
 */
const KNOWN_LIST_MAX = 256;

/** Strings up to this length keep their Slots across requests. */
const SHARED_MAX_LENGTH = 4096;
/** Strings per generation of a SlotCache. */
const SHARED_GENERATION = 4096;
/** Chars of strings per generation of a SlotCache (long strings fill a generation sooner). */
const SHARED_GENERATION_CHARS = 1 << 20;

/**
 * What is known about short strings, kept across requests: header values,
 * names and most arguments repeat from one request to the next, and their
 * transformations, factor hits and presence bitmaps are pure functions of
 * the string. One cache per rule set (transformation ids are the rule set's)
 * and factor index (a newer index knows more sets), in two generations: a
 * string not seen for SHARED_GENERATION newer strings is forgotten.
 */
class SlotCache {
  private cur = new Map<SlotKey, Slots>();
  private old = new Map<SlotKey, Slots>();
  private chars = 0;
  /** Known sets of recent value lists (see knownFor), oldest first overwritten. */
  private readonly known: (KnownList | undefined)[] = new Array<KnownList | undefined>(KNOWN_LISTS);
  private knownNext = 0;
  /** Strings seen once and not kept (see seenBefore), in two generations like the kept ones. */
  private seenCur = new Map<SlotKey, true>();
  private seenOld = new Map<SlotKey, true>();
  constructor(readonly index: FactorIndex) {}

  /**
   * The known set (the AND of Slots.nm) of a list remembered from an
   * earlier one (this request's or an earlier one's) with the same `key` and
   * `tag`, if none of its values has learnt a bit since: `nmv`, the sum of
   * their Slots.nmv, is then the same (each only grows). The key is the
   * list's Slots in order for a whole list (tag -1), and its entries for a
   * selection of it (tag: the known-target id; entries carry the names that
   * select). A JSON body's entries and their Slots are kept from one body to
   * the next (see request-vars.ts JName), so a body like the one before does
   * not AND its values' sets again, nor does ARGS_POST after ARGS.
   */
  knownFor(key: readonly object[], tag: number, nmv: number): Bits | null | undefined {
    const n = key.length;
    for (let j = 0; j < KNOWN_LISTS; j++) {
      const e = this.known[j];
      if (e === undefined || e.nmv !== nmv || e.tag !== tag || e.key.length !== n || e.key[0] !== key[0]) continue;
      let i = 1;
      while (i < n && e.key[i] === key[i]) i++;
      if (i === n) return e.bits;
    }
    return undefined;
  }

  keepKnown(key: readonly object[], tag: number, nmv: number, bits: Bits | null): void {
    this.known[this.knownNext] = { key, tag, nmv, bits };
    this.knownNext = (this.knownNext + 1) % KNOWN_LISTS;
  }

  /** The kept Slots of the string `v` whose key (see slotKey) is `k`, if any. */
  find(k: SlotKey, v: string): Slots | undefined {
    const long = longOf(k, v);
    let sl = this.cur.get(k);
    if (sl !== undefined && sl.long === long) return sl;
    sl = this.old.get(k);
    if (sl === undefined || sl.long !== long) return undefined;
    this.put(k, v, sl);
    return sl;
  }

  /**
   * Whether a string not kept (see find) is to be kept now: a string is kept
   * from the second time it is seen (within the last SHARED_GENERATION
   * strings or so), the first time it is only noted (a long one by its key).
   * A value that never comes back (an order id, a search, a note) then dies
   * with its request instead of being copied into the old generation with
   * what was derived from it; one that comes back is kept from then on.
   */
  seenBefore(k: SlotKey): boolean {
    if (this.seenCur.get(k) !== undefined || this.seenOld.get(k) !== undefined) return true;
    if (this.seenCur.size >= SHARED_GENERATION) {
      this.seenOld = this.seenCur;
      this.seenCur = new Map();
    }
    this.seenCur.set(k, true);
    return false;
  }

  /** New kept Slots for `v` (key `k`). */
  keep(k: SlotKey, v: string): Slots {
    const sl = new Slots(this);
    sl.long = longOf(k, v);
    this.put(k, v, sl);
    return sl;
  }

  private put(k: SlotKey, v: string, sl: Slots): void {
    if (this.cur.size >= SHARED_GENERATION || this.chars >= SHARED_GENERATION_CHARS) {
      this.old = this.cur;
      this.cur = new Map();
      this.chars = 0;
    }
    this.cur.set(k, sl);
    this.chars += v.length;
  }
}

/** A short string is its own key; a long one, a number (see sampleKey). */
type SlotKey = string | number;

/**
 * A string's key in a SlotCache and in a transaction's own map: a long string
 * (a body) is found by a sample of it and then compared whole (Slots.long):
 * hashing it costs its length (3.5 µs for 2 KiB in a gateway), and a body
 * seen before is rarer than one that is not.
 */
function slotKey(v: string): SlotKey {
  return v.length > LONG_STRING ? sampleKey(v) : v;
}

/** What Slots found under key `k` must hold as Slots.long to be those of `v` (another string may share a long one's sample). */
function longOf(k: SlotKey, v: string): string | undefined {
  return k === v ? undefined : v;
}

/** Strings longer than this are keyed in a SlotCache by sampleKey. */
const LONG_STRING = 256;

/**
 * A number made of the length of `v` (longer than LONG_STRING) and a hash of
 * its ends and three chunks of its middle: two strings with the same key are
 * then compared whole. Not a string of slices of `v`: a slice of 13 chars or
 * more can be a view keeping all of `v` alive, and the keys of strings seen
 * once are kept without them (SlotCache.seenBefore). A number also hashes
 * faster in a Map (0.4 against 0.85 µs per 2 KiB body, key and lookup).
 */
function sampleKey(v: string): number {
  const n = v.length;
  const q = n >> 2;
  let h = 0x811c9dc5 ^ n;
  h = fnv(v, 0, 48, h);
  h = fnv(v, q, q + 16, h);
  h = fnv(v, 2 * q, 2 * q + 16, h);
  h = fnv(v, 3 * q, 3 * q + 16, h);
  h = fnv(v, n - 48, n, h);
  return n * 0x100000000 + (h >>> 0);
}

/** FNV-1a over v[from, to), from `h`. */
function fnv(v: string, from: number, to: number, h: number): number {
  for (let i = from; i < to; i++) h = Math.imul(h ^ v.charCodeAt(i), 0x01000193);
  return h;
}

const slotCaches = new WeakMap<EngineRules, SlotCache>();

function slotCache(rules: EngineRules, index: FactorIndex): SlotCache {
  let c = slotCaches.get(rules);
  if (c === undefined || c.index !== index) {
    c = new SlotCache(index);
    slotCaches.set(rules, c);
  }
  return c;
}

/** ASCII-only lower-casing, as ModSecurity compares keys (bytes >= 0x80 stay as they are). */
export function lowerAscii(s: string): string {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0x41 && c <= 0x5a) return lowerFrom(s, i);
  }
  return s;
}

function lowerFrom(s: string, from: number): string {
  // ASCII: the native lower-casing is the same (it would also change bytes >= 0x80, Latin-1 letters).
  let i = from;
  while (i < s.length && s.charCodeAt(i) < 0x80) i++;
  if (i === s.length) return s.toLowerCase();
  let out = s.slice(0, from);
  for (let i = from; i < s.length; i++) {
    const c = s.charCodeAt(i);
    out += c >= 0x41 && c <= 0x5a ? String.fromCharCode(c + 32) : s[i];
  }
  return out;
}

function toInt(s: string | undefined): number {
  if (s === undefined) return 0;
  const n = parseInt(s, 10);
  return Number.isFinite(n) ? n : 0;
}

/** `name` equals the lower-cased `lkey`, ignoring ASCII case (no allocation: most names differ in length). */
function keyEquals(name: string, lkey: string): boolean {
  return name.length === lkey.length && startsWithAsciiCi(name, lkey);
}

/** Whether `s` starts with `lowerPrefix` (lower-case ASCII), ASCII case-insensitively (bytes >= 0x80 compare as they are). */
export function startsWithAsciiCi(s: string, lowerPrefix: string): boolean {
  if (s.length < lowerPrefix.length) return false;
  for (let i = 0; i < lowerPrefix.length; i++) {
    let c = s.charCodeAt(i);
    if (c >= 0x41 && c <= 0x5a) c |= 0x20;
    if (c !== lowerPrefix.charCodeAt(i)) return false;
  }
  return true;
}

function selects(sel: KeySelector, name: string): boolean {
  if (sel.keyRx !== undefined) return sel.keyRx.test(name);
  if (sel.key !== undefined) return keyEquals(name, sel.key);
  return true;
}

/** Rule sets whose `@rx` operators have their factor set ids. */
const prepared = new WeakSet<EngineRules>();
/** The next id for a static operator's answers in Slots.ops, process-wide. */
let nextMemoId = 0;
/** Transformation pipelines (transformIds joined) -> pipeline id, process-wide. */
const pipelineIds = new Map<string, number>();
/** A rule's gate (see CompiledRule.gate). */
export interface RuleGate {
  targets: readonly GateTarget[];
  k: number;
}

/** A value list as the rule gate reads it: a collection (keyed or whole) or a scalar. */
interface GateTarget {
  id: number;
  kind: number;
  name: string;
  key: string | undefined;
}

/** Rule signatures (see CompiledRule.sig) by operator memo id, pipeline and multiMatch, process-wide. */
const sigIds = new Map<string, number>();

/** A rule target as the known-no-match checks read it: `id` indexes the per-request cache of what its values are known not to match. */
export interface KnownTarget {
  id: number;
  t: Target;
}

/**
 * Known-target ids by what a target selects (see knownTargetKey): targets
 * that select the same values share one per-request cache entry, so CRS's
 * many `REQUEST_HEADERS|!REQUEST_HEADERS:Cookie` targets take their known set
 * once per phase, not once per rule.
 */
const knownTargetIds = new Map<string, number>();
let nextKnownTarget = 0;
/** Key matchers by identity (a rule set compiles each pattern once, see ruleset.ts keyRegex). */
const matcherIds = new WeakMap<KeyMatcher, number>();
let nextMatcher = 0;

function matcherId(m: KeyMatcher): number {
  let id = matcherIds.get(m);
  if (id === undefined) matcherIds.set(m, (id = nextMatcher++));
  return id;
}

/** What decides which values target `t` reads (selects, isExcluded), as a string: equal strings, equal values. */
function knownTargetKey(t: Target): string {
  const sel = (x: KeySelector): string => (x.keyRx !== undefined ? `/${matcherId(x.keyRx)}` : x.key !== undefined ? `=${x.key}` : '');
  let k = `${t.kind}:${t.name}:${sel(t)}`;
  if (t.excludes !== undefined) for (const x of t.excludes) k += `!${sel(x)}`;
  return k;
}

function knownTargets(r: CompiledRule): readonly KnownTarget[] | null {
  const out: KnownTarget[] = [];
  for (const t of r.targets) {
    if (t.count || (t.kind !== T_SCALAR && t.kind !== T_COLLECTION)) return null;
    const key = knownTargetKey(t);
    let id = knownTargetIds.get(key);
    if (id === undefined) knownTargetIds.set(key, (id = nextKnownTarget++));
    out.push({ id, t });
  }
  return out;
}

/** Gate targets by `kind:name:key`, process-wide (their ids index per-request caches). */
const gateTargets = new Map<string, GateTarget>();

/** The rule gate of a chain starter, or undefined when its targets or operator do not allow one. */
function ruleGate(r: CompiledRule): RuleGate | undefined {
  const op = r.op;
  const pf = op?.compiled as PrefilteredOperator | undefined;
  if (op === undefined || pf === undefined || op.negated || r.multiMatch) return undefined;
  if (pf.factorSetId === undefined && pf.plain === undefined) return undefined;
  const targets: GateTarget[] = [];
  for (const t of r.targets) {
    if (t.count || (t.kind !== T_SCALAR && t.kind !== T_COLLECTION)) return undefined;
    // Exclusions and key regexes only take values away: the whole collection is read.
    const key = t.kind === T_COLLECTION ? t.key : undefined;
    const sig = `${t.kind}:${t.name}:${key ?? ''}`;
    let g = gateTargets.get(sig);
    if (g === undefined) {
      g = { id: gateTargets.size, kind: t.kind, name: t.name, key };
      gateTargets.set(sig, g);
    }
    targets.push(g);
  }
  return { targets, k: r.transforms.length === 0 ? 0 : r.pipelineId! + 1 };
}

/** Gives each static `@rx` operator with literal factors its id in the process-wide factor index. */
function prepareRules(rules: EngineRules): void {
  if (prepared.has(rules)) return;
  for (let phase = 1; phase <= 5; phase++) {
    for (const top of rules.phase(phase).rules) {
      for (let r: CompiledRule | undefined = top; r !== undefined; r = r.chain) {
        const op = r.op?.compiled as PrefilteredOperator | undefined;
        if (op !== undefined && op.memoId === undefined) op.memoId = nextMemoId++;
        if (op !== undefined && r.sig === undefined) {
          const key = `${op.memoId}|${r.transformIds.join(',')}|${r.multiMatch ? 1 : 0}|${r.op!.negated ? 1 : 0}`;
          let sig = sigIds.get(key);
          if (sig === undefined) sigIds.set(key, (sig = sigIds.size));
          r.sig = sig;
          r.known = knownTargets(r);
        }
        if (op?.factors !== undefined && op.factorSetId === undefined) op.factorSetId = factorSetId(op.factors);
        const plain = op?.plain;
        if (plain?.factorSets !== undefined && plain.factorSetIds === undefined) plain.factorSetIds = plain.factorSets.map(factorSetId);
        if (r.transforms.length !== 0 && r.pipelineId === undefined) {
          const key = r.transformIds.join(',');
          let pid = pipelineIds.get(key);
          if (pid === undefined) {
            pid = pipelineIds.size;
            pipelineIds.set(key, pid);
          }
          r.pipelineId = pid;
          r.pipelineTrigger = pipelineTrigger(r.transforms);
        }
      }
      if (top.marker === undefined && top.gate === undefined) top.gate = ruleGate(top);
    }
  }
  prepared.add(rules);
}

/**
 * What phase 1 computes before its first rule that reads anything but TX
 * (CRS's REQUEST-901 defaults, mostly): the TX variables then, and where
 * the walk goes on. The same for every request of a rule set, so computed
 * once; null when the rule set has no such rules or one of them would log,
 * block or stop.
 */
interface Prologue {
  /** TX after the prologue: frozen entries, the base every transaction writes over (see TxVars). */
  map: TxEntries;
  resume: number;
  rulesRun: number;
  matchedVar: string;
  matchedVarName: string;
  /** Per phase: the folded rules (see foldConstantRules). */
  folds: (Fold | undefined)[];
}

/**
 * Rules whose outcome is the same for every request: they read only TX
 * variables that no rule after the prologue writes, and either write
 * nothing (CRS's paranoia-level checks: `TX:DETECTION_PARANOIA_LEVEL "@lt 2"`
 * with skipAfter) or never match (CRS's scoring for levels above the one in
 * force). `next[i]` is where the walk goes on after rule i (-1: not
 * folded); `matched[i]`, MATCHED_VAR and its name when rule i matches.
 */
interface Fold {
  next: Int32Array;
  matched: (readonly [string, string] | undefined)[];
  /** rules[i].index, so a rule removed at run time is told without reading it. */
  index: Int32Array;
}

/** The TX keys a rule list writes: exact keys, key prefixes (a macro after a literal), or any key. */
interface TxWrites {
  exact: Set<string>;
  prefixes: string[];
  any: boolean;
}

function txWrites(rules: readonly CompiledRule[]): TxWrites {
  const w: TxWrites = { exact: new Set(), prefixes: [], any: false };
  for (const top of rules) {
    for (let r: CompiledRule | undefined = top; r !== undefined; r = r.chain) {
      if (r.capture) for (let d = 0; d <= 9; d++) w.exact.add(String(d));
      for (const sv of r.setvars) {
        if (typeof sv.key === 'string') w.exact.add(sv.lkey ?? lowerAscii(sv.key));
        else if (typeof sv.key[0] === 'string' && sv.key[0] !== '') w.prefixes.push(lowerAscii(sv.key[0]));
        else w.any = true;
      }
    }
  }
  return w;
}

/** The TX keys a rule (with its chain, unless `starterOnly`) reads, or null when it reads TX in a way a key list cannot say (a key regex, all of TX). */
function txReads(top: CompiledRule, starterOnly = false): string[] | null {
  const keys: string[] = [];
  const macro = (m: Macro): boolean => {
    if (typeof m === 'string') return true;
    for (const p of m) {
      if (typeof p === 'string' || p.name !== 'TX') continue;
      if (p.key === undefined) return false;
      keys.push(p.key);
    }
    return true;
  };
  for (let r: CompiledRule | undefined = top; r !== undefined; r = starterOnly ? undefined : r.chain) {
    for (const t of r.targets) {
      if (t.kind !== T_TX || t.key === undefined || t.keyRx !== undefined) return null;
      keys.push(t.key);
    }
    if (r.op?.dynamicArg !== undefined && !macro(r.op.dynamicArg)) return null;
  }
  return keys;
}

/**
 * Whether a chain's first rule reads nothing but TX (its chain may read
 * anything). Its actions run only once the whole chain matches, so when it
 * does not match for the prologue's TX the rule never matches (see Fold).
 */
function starterReadsOnlyTx(r: CompiledRule): boolean {
  if (r.chain === undefined || r.op === undefined || r.targets.length === 0) return false;
  for (const t of r.targets) if (t.kind !== T_TX) return false;
  return r.op.compiled !== undefined || (r.op.dynamicArg !== undefined && readsOnlyTx(r.op.dynamicArg));
}

function writesKey(w: TxWrites, key: string): boolean {
  return w.any || w.exact.has(key) || w.prefixes.some((p) => key.startsWith(p));
}

/** Whether a rule or its chain has setvars, a capture or ctls (anything but its match and where the walk goes). */
function hasEffects(top: CompiledRule): boolean {
  for (let r: CompiledRule | undefined = top; r !== undefined; r = r.chain) if (r.setvars.length !== 0 || r.capture || r.ctls.length !== 0) return true;
  return false;
}

const prologues = new WeakMap<EngineRules, Prologue | null>();

/** Per ctl:ruleRemoveTargetByTag: the removal list of a rule that has only this one (shared across requests, frozen). */
const onlyRemoval = new WeakMap<CtlOp, readonly RuntimeRemoval[]>();

/** Per rule set, per ruleRemoveTargetByTag ctl: the per-rule removal table it makes as a request's first removal. */
const presets = new WeakMap<EngineRules, Map<CtlOp, (readonly RuntimeRemoval[] | undefined)[]>>();

/** The table `c` makes from none (see Transaction.targetRemovals), built once and frozen: transactions copy it before changing it. */
function presetRemovals(rules: EngineRules, c: CtlOp & { tag: string }, one: readonly RuntimeRemoval[]): (readonly RuntimeRemoval[] | undefined)[] {
  let byCtl = presets.get(rules);
  if (byCtl === undefined) presets.set(rules, (byCtl = new Map()));
  let t = byCtl.get(c);
  if (t === undefined) {
    t = new Array<readonly RuntimeRemoval[] | undefined>(rules.baseSize);
    for (const r of rules.rulesByTag(c.tag)) t[r.index] = one;
    byCtl.set(c, Object.freeze(t) as (readonly RuntimeRemoval[] | undefined)[]);
  }
  return t;
}

/**
 * A phase's rules as the known-no-match check reads them, in typed arrays
 * (see Transaction.walk): per rule, its signature (-1: none) and the
 * group of rules with the same targets.
 */
interface PhasePlan {
  sig: Int32Array;
  group: Int32Array;
  /** Per group: how many rules have it (a group of one is checked target by target, see groupKnown). */
  size: Int32Array;
  /** Group g's known-target ids are ids[start[g]] .. ids[start[g + 1] - 1] (no pointer to follow per target). */
  ids: Int32Array;
  start: Int32Array;
  /** The target of each known-target id the groups have. */
  target: Target[];
  /** Per rule: 1 for a marker (passed over without reading the rule). */
  marker: Uint8Array;
}

const phasePlans = new WeakMap<EngineRules, PhasePlan[]>();

function phasePlan(rules: EngineRules, phase: number): PhasePlan {
  let plans = phasePlans.get(rules);
  if (plans === undefined) phasePlans.set(rules, (plans = []));
  let plan = plans[phase];
  if (plan !== undefined) return plan;
  const list = rules.phase(phase).rules;
  const sig = new Int32Array(list.length).fill(-1);
  const group = new Int32Array(list.length).fill(-1);
  const groups: (readonly KnownTarget[])[] = [];
  const byKey = new Map<string, number>();
  const marker = new Uint8Array(list.length);
  for (let i = 0; i < list.length; i++) {
    const r = list[i]!;
    if (r.marker !== undefined) marker[i] = 1;
    if (r.marker !== undefined || r.sig === undefined || r.known == null || r.known.length === 0) continue;
    const key = r.known.map((k) => k.id).join(',');
    let g = byKey.get(key);
    if (g === undefined) {
      byKey.set(key, (g = groups.length));
      groups.push(r.known);
    }
    sig[i] = r.sig;
    group[i] = g;
  }
  const size = new Int32Array(groups.length);
  for (let i = 0; i < list.length; i++) if (group[i]! >= 0) size[group[i]!]!++;
  const start = new Int32Array(groups.length + 1);
  for (let g = 0; g < groups.length; g++) start[g + 1] = start[g]! + groups[g]!.length;
  const ids = new Int32Array(start[groups.length]!);
  const target: Target[] = [];
  groups.forEach((ts, g) => ts.forEach((kt, k) => {
    ids[start[g]! + k] = kt.id;
    target[kt.id] = kt.t;
  }));
  plan = plans[phase] = { sig, group, size, ids, start, target, marker };
  return plan;
}

const NO_VARS: RequestVars = { scalars: new Map(), collections: new Map() };

/** Whether a macro reads nothing but TX (and the matched TX variable). */
function readsOnlyTx(m: Macro): boolean {
  if (typeof m === 'string') return true;
  for (const p of m) if (typeof p !== 'string' && p.name !== 'TX' && p.name !== 'MATCHED_VAR' && p.name !== 'MATCHED_VAR_NAME') return false;
  return true;
}

/** Whether a rule (with its chain) reads and writes nothing but TX: its effect is the same for every request. */
function readsOnlyTxRule(r: CompiledRule): boolean {
  if (r.marker !== undefined) return true;
  for (const t of r.targets) if (t.kind !== T_TX) return false;
  if (r.op !== undefined && r.op.compiled === undefined && (r.op.dynamicArg === undefined || !readsOnlyTx(r.op.dynamicArg))) return false;
  if (r.ctls.length !== 0) return false;
  for (const sv of r.setvars) if (!readsOnlyTx(sv.key) || !readsOnlyTx(sv.value)) return false;
  return r.chain === undefined || readsOnlyTxRule(r.chain);
}

function prologueOf(rules: EngineRules): Prologue | null {
  let p = prologues.get(rules);
  if (p !== undefined) return p;
  p = new Transaction(rules, NO_VARS, { prologue: false }).computePrologue();
  prologues.set(rules, p);
  return p;
}

export class Transaction {
  private vars: RequestVars;
  private readonly tx: TxVars;
  /** Per collection list: its entries by lower-cased key (lists the body left unchanged keep theirs into phase 2). */
  private readonly keyIndex = new Map<readonly VarEntry[], Map<string, VarEntry[]>>();
  /** This transaction's own Slots (see ownSlots), by slotKey: strings its SlotCache does not keep, and what they transform into. */
  private readonly own = new Map<SlotKey, Slots>();
  /** Slots of strings up to SHARED_MAX_LENGTH seen more than once, kept across requests (see SlotCache); undefined without prefilters. */
  private readonly shared: SlotCache | undefined;
  /** The same, per entry of a collection list (saves hashing the value on every rule). */
  private readonly rows = new Map<readonly VarEntry[], Slots[]>();
  private matchedVar = '';
  private matchedVarName = '';
  private readonly matchedVars: VarEntry[] = [];
  private removed: Uint8Array | undefined;
  /** By rule index (an array: looked up for every rule once a ctl removed a target). */
  private targetRemovals: (readonly RuntimeRemoval[] | undefined)[] | undefined;
  /** targetRemovals is a preset shared with other transactions (see presetRemovals): copied before a change. */
  private sharedRemovals = false;
  private interruption: Interruption | undefined;
  private stopped = false;
  private detectionOnly = false;
  private readonly matches: WafMatch[] = [];
  private dropped = 0;
  private bodyProcessor: string | undefined;
  private forceBody = false;
  private bodyAccess: boolean | undefined;
  private rulesRun = 0;
  private operatorRuns = 0;
  private prefiltered = 0;
  /** The literal prefilter (`@rx`, `@pm`): which factor sets occur in a value (per distinct value). */
  private readonly factors: FactorIndex;
  /** Per gate target, per pipeline (see CompiledRule.gate): the factor sets its values hit. */
  private gateHits: ((ListHits | undefined)[] | undefined)[] = [];
  /** Per collection list, per transformation pipeline (0: none, p + 1: pipeline p): the factor sets its values hit. */
  private readonly listHitCache = new Map<readonly VarEntry[], (ListHits | undefined)[]>();
  /** Per collection list: see listKnown. */
  private readonly knownCache = new Map<readonly VarEntry[], Bits>();
  /** Per known-target id (see KnownTarget): the signatures all its values are known not to match; null: it has no values. */
  private knownByTarget: (Bits | null | undefined)[] = [];
  /** Per phase, per group of a PhasePlan: the AND of its targets' known sets (null: no target has values). See groupKnown. */
  private knownByGroup: ((Bits | null | undefined)[] | undefined)[] = [];
  /** Per known-target id: signatures of rules whose gate proved that none of its values match (see noteRejected). */
  private rejected: (Bits | undefined)[] = [];
  private rejectedTargets: KnownTarget[] = [];
  /** Slots of the string the last transform() returned. */
  private lastSlots: Slots | undefined;
  /** The chain starter's first matched value, for its log entry. */
  private firstName = '';
  private firstRaw = '';
  private haveFirst = false;

  /** False runs every operator on every value, with nothing kept from other requests (tests compare the verdicts with and without). */
  private readonly prefilter: boolean;
  /** Where phase 1 starts: after the rule set's prologue (see Prologue), once it is applied. */
  private phase1Start = 0;
  /** Per phase: rules whose outcome is known for every request (see Fold); none without a prologue. */
  private folds: readonly (Fold | undefined)[] = [];

  constructor(
    private readonly rules: EngineRules,
    vars: RequestVars,
    opts: { prefilter?: boolean; prologue?: boolean } = {},
  ) {
    this.vars = vars;
    this.prefilter = opts.prefilter !== false;
    prepareRules(rules);
    this.factors = factorIndex();
    this.shared = opts.prefilter === false ? undefined : slotCache(rules, this.factors);
    const pro = opts.prologue === false || opts.prefilter === false ? null : prologueOf(rules);
    if (pro === null) {
      this.tx = new TxVars(EMPTY_TX);
      for (const [lk, name, value] of rules.txSeed) this.tx.set(lk, { name, value });
    } else {
      // Entries are never changed in place (runSetvars replaces them), so the prologue's map is shared, not copied.
      this.tx = new TxVars(pro.map);
      this.phase1Start = pro.resume;
      this.folds = pro.folds;
      this.rulesRun = pro.rulesRun;
      this.matchedVar = pro.matchedVar;
      this.matchedVarName = pro.matchedVarName;
    }
  }

  /** Runs phase 1 up to its first rule that reads more than TX; the result, unless one logged, blocked or stopped (see Prologue). */
  /** @internal Used once per rule set by prologueOf. */
  computePrologue(): Prologue | null {
    const resume = this.walk(1, 0, true);
    if (resume === 0 || this.interruption || this.stopped || this.matches.length !== 0 || this.dropped !== 0 || this.removed || this.targetRemovals) return null;
    const map = new Map<string, Readonly<TxVar>>();
    this.tx.forEach((e, lk) => map.set(lk, Object.freeze({ name: e.name, value: e.value })));
    const out: Prologue = { map, resume, rulesRun: this.rulesRun, matchedVar: this.matchedVar, matchedVarName: this.matchedVarName, folds: [] };
    this.foldConstantRules(out);
    return out;
  }

  /**
   * Evaluates, in the prologue's TX state, each later rule that reads only
   * TX keys no later rule writes and has no effect but its match (see Fold),
   * and records where the walk goes after it. Runs on the prologue's own
   * transaction, which is not used again.
   */
  private foldConstantRules(pro: Prologue): void {
    const phases = [1, 2].map((p) => this.rules.phase(p));
    const later = [...phases[0]!.rules.slice(pro.resume), ...phases[1]!.rules];
    const writes = txWrites(later);
    phases.forEach(({ rules, skipAfterTarget }, k) => {
      const phase = k + 1;
      const next = new Int32Array(rules.length).fill(-1);
      const matched: (readonly [string, string] | undefined)[] = [];
      const index = new Int32Array(rules.length);
      let folded = 0;
      for (let i = phase === 1 ? pro.resume : 0; i < rules.length; i++) {
        const r = rules[i]!;
        index[i] = r.index;
        if (r.marker !== undefined) continue;
        // A rule that reads only TX; or a chain whose first rule does (CRS's
        // `&TX:MAX_NUM_ARGS "@eq 1"` chain `&ARGS "@gt %{tx.max_num_args}"`),
        // folded only when that first rule does not match.
        const whole = readsOnlyTxRule(r);
        if (!whole && !starterReadsOnlyTx(r)) continue;
        const reads = txReads(r, !whole);
        if (reads === null || reads.some((key) => writesKey(writes, key))) continue;
        this.matchedVars.length = 0;
        this.haveFirst = false;
        const logged = this.matches.length;
        const before = this.tx.snapshot();
        const hit = this.evalRule(whole ? r : { ...r, chain: undefined }, true);
        if (this.matches.length !== logged || this.interruption || this.stopped || (hit && (!whole || hasEffects(r)))) {
          // It would log, end the request or change TX: not folded. A rule with
          // effects is folded only when it never matches (CRS's scoring for
          // levels above the one in force). Its effects here are undone.
          this.matches.length = logged;
          this.interruption = undefined;
          this.stopped = false;
          this.tx.restore(before);
          continue;
        }
        next[i] = !hit ? i + 1 : r.skipAfter !== undefined ? skipAfterTarget[i]! : r.skip > 0 ? i + 1 + r.skip : i + 1;
        if (hit) matched[i] = [this.matchedVar, this.matchedVarName];
        folded++;
      }
      if (folded !== 0) pro.folds[phase] = { next, matched, index };
    });
  }

  /**
   * Runs the rules of one phase: 1 with the head variables, 2 once the body
   * is known (pass the variables that include it). Returns the interruption,
   * if a rule stopped the request (now or in an earlier phase).
   */
  runPhase(phase: number, vars?: RequestVars): Interruption | undefined {
    if (vars && vars !== this.vars) {
      this.vars = vars;
      this.gateHits = [];
      this.knownByTarget = [];
      this.knownByGroup = [];
    }
    if (this.interruption || this.stopped) return this.interruption;
    let start = 0;
    if (phase === 1) {
      start = this.phase1Start;
      this.phase1Start = 0;
    }
    this.walk(phase, start, false);
    if (this.rejectedTargets.length !== 0) this.flushRejected();
    return this.interruption;
  }

  /** Runs a phase's rules from `start`; with `txOnly`, stops before the first that reads more than TX and returns its position. */
  private walk(phase: number, start: number, txOnly: boolean): number {
    const { rules, skipAfterTarget } = this.rules.phase(phase);
    const n = rules.length;
    // Rules whose values are all known not to match them are passed over
    // without reading the rule (typed arrays, and the known sets of the rule's targets).
    const plan = txOnly || !this.prefilter ? undefined : phasePlan(this.rules, phase);
    const fold = txOnly ? undefined : this.folds[phase];
    let groupBits: (Bits | null | undefined)[] | undefined;
    if (plan !== undefined) {
      groupBits = this.knownByGroup[phase];
      if (groupBits === undefined) groupBits = this.knownByGroup[phase] = new Array<Bits | null | undefined>(plan.size.length);
    }
    let i = start;
    while (i < n) {
      if (fold !== undefined) {
        const next = fold.next[i]!;
        if (next >= 0) {
          // Its outcome is the same for every request (see Fold), unless a ctl removed it.
          if (this.removed !== undefined && this.removed[fold.index[i]!] === 1) i++;
          else {
            this.rulesRun++;
            const m = fold.matched[i];
            if (m !== undefined) {
              this.matchedVar = m[0];
              this.matchedVarName = m[1];
            }
            i = next;
          }
          continue;
        }
      }
      if (plan !== undefined) {
        if (plan.marker[i] === 1) {
          i++;
          continue;
        }
        const g = plan.group[i]!;
        if (g >= 0 && this.groupKnown(plan, groupBits!, g, plan.sig[i]!)) {
          this.rulesRun++;
          i++;
          continue;
        }
      }
      const r = rules[i]!;
      if (txOnly && !readsOnlyTxRule(r)) return i;
      if (r.marker !== undefined || (this.removed !== undefined && this.removed[r.index] === 1)) {
        i++;
        continue;
      }
      if (this.matchedVars.length !== 0) this.matchedVars.length = 0;
      this.haveFirst = false;
      this.rulesRun++;
      // A rule whose values are all known not to match it once run-time
      // removals are applied (see Slots.nm; without removals the group check
      // above already asked), or none of whose values could (its gate), is
      // not evaluated; what the gate proved is remembered with the values (see noteRejected).
      const sig = this.prefilter ? r.sig : undefined;
      const removals = sig !== undefined ? this.targetRemovals?.[r.index] : undefined;
      let matched: boolean;
      if (removals !== undefined && this.knownNoMatch(r, sig!, removals)) matched = false;
      else if (r.gate !== undefined && this.prefilter && !this.ruleMayMatch(r, r.gate)) {
        matched = false;
        if (sig !== undefined) this.noteRejected(r, sig);
      } else matched = this.evalRule(r, true);
      if (this.interruption || this.stopped) break;
      if (matched) {
        if (r.skipAfter !== undefined) {
          i = skipAfterTarget[i]!;
          continue;
        }
        if (r.skip > 0) {
          i += 1 + r.skip;
          continue;
        }
      }
      i++;
    }
    return i;
  }

  verdict(): Verdict {
    const v: Verdict = {
      inboundScore: toInt(this.tx.get('blocking_inbound_anomaly_score')?.value),
      detectionScore: toInt(this.tx.get('detection_inbound_anomaly_score')?.value),
      threshold: toInt(this.tx.get('inbound_anomaly_score_threshold')?.value),
      blocked: this.interruption !== undefined,
      matches: this.matches.slice(),
      droppedMatches: this.dropped,
      forceRequestBodyVariable: this.forceBody,
    };
    if (this.interruption) v.interruption = { ...this.interruption };
    if (this.bodyProcessor !== undefined) v.requestBodyProcessor = this.bodyProcessor;
    return v;
  }

  /** ctl:requestBodyProcessor, once phase 1 has run: give it to the body parser. */
  get requestBodyProcessor(): string | undefined {
    return this.bodyProcessor;
  }

  /** ctl:forceRequestBodyVariable: REQUEST_BODY should be filled even without a body processor. */
  get forceRequestBodyVariable(): boolean {
    return this.forceBody;
  }

  /** ctl:requestBodyAccess, when a rule set it. */
  get requestBodyAccess(): boolean | undefined {
    return this.bodyAccess;
  }

  /**
   * Work done so far: chain starters evaluated, operator calls (skipped rules
   * cost neither), and `@rx`/`@pm` calls the literal prefilter answered without running them.
   */
  get stats(): { rules: number; operators: number; prefiltered: number } {
    return { rules: this.rulesRun, operators: this.operatorRuns, prefiltered: this.prefiltered };
  }

  /** A TX variable's current value (keys are case-insensitive). */
  txValue(key: string): string | undefined {
    return this.tx.get(lowerAscii(key))?.value;
  }

  // -------------------------------------------------------------------------

  private evalRule(rule: CompiledRule, top: boolean): boolean {
    let matched = false;
    const op = rule.op;
    if (op === undefined) {
      // SecAction: matches once, without touching MATCHED_VAR.
      this.runSetvars(rule);
      if (top && rule.chain) {
        this.haveFirst = true;
        this.firstName = '';
        this.firstRaw = '';
      }
      matched = true;
    } else {
      const compiled = op.compiled ?? this.dynamicOperator(op);
      // ctl:ruleRemoveTarget* name rules by id or tag: chained rules have neither.
      const removals = top ? this.targetRemovals?.[rule.index] : undefined;
      const targets = rule.targets;
      for (let i = 0; i < targets.length; i++) {
        const t = targets[i]!;
        if (removals !== undefined && removedWhole(removals, t)) continue;
        if (this.evalTarget(rule, top, t, compiled, removals)) matched = true;
      }
    }
    if (!matched) return false;
    if (rule.chain && !this.evalRule(rule.chain, false)) return false;
    const ctls = rule.ctls;
    for (let i = 0; i < ctls.length; i++) this.runCtl(ctls[i]!);
    if (top) this.finish(rule);
    return true;
  }

  private dynamicOperator(op: RuleOperator): CompiledOperator | undefined {
    const arg = this.expand(op.dynamicArg!);
    const cache = op.dynamicCache!;
    let c = cache.get(arg);
    if (c === undefined) {
      try {
        c = op.compile(arg);
      } catch {
        // An argument that does not compile (e.g. a number operator given text) matches nothing.
        c = null;
      }
      if (cache.size >= MAX_DYNAMIC_OPERATORS) cache.clear();
      cache.set(arg, c);
    }
    return c ?? undefined;
  }

  private evalTarget(
    rule: CompiledRule,
    top: boolean,
    t: Target,
    op: CompiledOperator | undefined,
    removals: readonly RuntimeRemoval[] | undefined,
  ): boolean {
    let matched = false;
    switch (t.kind) {
      case T_SCALAR: {
        const v = this.vars.scalars.get(t.name);
        if (v !== undefined) {
          if (t.count) return this.test(rule, top, '', t.raw, '1', op);
          return this.test(rule, top, '', t.name, v, op, rule.sig !== undefined && this.prefilter ? this.slotsOf(v) : undefined);
        }
        // A name the compiler took for a scalar may still come as a collection.
        const list = this.vars.collections.get(t.name);
        if (list === undefined) return t.count ? this.test(rule, top, '', t.raw, '0', op) : false;
        return this.evalEntries(rule, top, t, list, false, op, removals);
      }
      case T_COLLECTION: {
        if (t.key !== undefined) return this.evalEntries(rule, top, t, this.keyed(t.name, t.key), true, op, removals);
        const list = this.vars.collections.get(t.name);
        if (list !== undefined) return this.evalEntries(rule, top, t, list, false, op, removals);
        // A name the compiler took for a collection may still come as a scalar.
        const v = this.vars.scalars.get(t.name);
        if (v !== undefined) {
          if (t.count) return this.test(rule, top, '', t.raw, '1', op);
          return this.test(rule, top, '', t.name, v, op, rule.sig !== undefined && this.prefilter ? this.slotsOf(v) : undefined);
        }
        return t.count ? this.test(rule, top, '', t.raw, '0', op) : false;
      }
      case T_TX: {
        if (t.key !== undefined) {
          const e = this.tx.get(t.key);
          const hit = e !== undefined && !isExcluded(t, e.name, removals);
          if (t.count) return this.test(rule, top, '', t.raw, hit ? '1' : '0', op);
          return hit ? this.test(rule, top, t.prefix, e.name, e.value, op) : false;
        }
        // Snapshot first: setvars of this rule may add TX entries while it runs.
        // The entries themselves are never changed (runSetvars replaces them), so the snapshot holds them, not copies.
        const list: Readonly<TxVar>[] = [];
        const add = (e: Readonly<TxVar>): void => {
          if (!isExcluded(t, e.name, removals)) list.push(e);
        };
        if (t.keyRx !== undefined) this.tx.forEachMatching(t.keyRx, add);
        else this.tx.forEach(add);
        if (t.count) return this.test(rule, top, '', t.raw, String(list.length), op);
        for (const e of list) if (this.test(rule, top, t.prefix, e.name, e.value, op)) matched = true;
        return matched;
      }
      case T_MATCHED_VAR:
        if (t.count) return this.test(rule, top, '', t.raw, this.matchedVarName === '' ? '0' : '1', op);
        return this.test(rule, top, '', 'MATCHED_VAR', this.matchedVar, op);
      case T_MATCHED_VAR_NAME:
        if (t.count) return this.test(rule, top, '', t.raw, this.matchedVarName === '' ? '0' : '1', op);
        return this.test(rule, top, '', 'MATCHED_VAR_NAME', this.matchedVarName, op);
      case T_MATCHED_VARS:
      case T_MATCHED_VARS_NAMES: {
        // Snapshot: this rule's own matches are appended while it runs.
        const names = t.kind === T_MATCHED_VARS_NAMES;
        const list: VarEntry[] = [];
        for (const e of this.matchedVars) {
          if (!selects(t, e.name) || isExcluded(t, e.name, removals)) continue;
          list.push(names ? { name: e.name, value: e.name } : e);
        }
        if (t.count) return this.test(rule, top, '', t.raw, String(list.length), op);
        for (const e of list) if (this.test(rule, top, t.prefix, e.name, e.value, op)) matched = true;
        return matched;
      }
      default:
        return false;
    }
  }

  private evalEntries(
    rule: CompiledRule,
    top: boolean,
    t: Target,
    list: readonly VarEntry[],
    keyed: boolean,
    op: CompiledOperator | undefined,
    removals: readonly RuntimeRemoval[] | undefined,
  ): boolean {
    const select = !keyed && (t.key !== undefined || t.keyRx !== undefined);
    const filter = select || t.excludes !== undefined || removals !== undefined;
    if (t.count) {
      let n = 0;
      if (!filter) n = list.length;
      else
        for (let i = 0; i < list.length; i++) {
          const e = list[i]!;
          if ((!select || selects(t, e.name)) && !isExcluded(t, e.name, removals)) n++;
        }
      return this.test(rule, top, '', t.raw, String(n), op);
    }
    let matched = false;
    let rows: Slots[] | undefined;
    const pf = op as PrefilteredOperator | undefined;
    const gated = pf !== undefined && (pf.factorSetId !== undefined || pf.plain !== undefined);
    const sig = this.prefilter ? rule.sig : undefined;
    if (rule.transforms.length !== 0 || gated || sig !== undefined) {
      rows = this.rowsOf(list);
      // Every value already known not to match (see Slots.nm).
      if (sig !== undefined && !filter && list.length > 1 && hasBit(this.listKnown(list, rows), sig)) return false;
      // The whole list at once: when no value can match, the rule does not walk it.
      if (gated && this.prefilter && !rule.multiMatch && list.length > 1 && !mayMatchList(pf, this.listHits(rule, list, rows))) {
        this.prefiltered += list.length;
        // As the rule gate's (see noteRejected): every value of the list is known not to match.
        if (sig !== undefined) {
          for (let i = 0; i < list.length; i++) {
            const sl = this.rowSlots(rows, list, i);
            learnNoMatch(sl, sig);
          }
        }
        return false;
      }
    }
    for (let i = 0; i < list.length; i++) {
      const e = list[i]!;
      if (filter && ((select && !selects(t, e.name)) || isExcluded(t, e.name, removals))) continue;
      let slots: Slots | undefined;
      if (rows !== undefined) {
        slots = this.rowSlots(rows, list, i);
      }
      if (this.test(rule, top, t.prefix, e.name, e.value, op, slots)) matched = true;
    }
    return matched;
  }

  /** The rule signatures every value of `list` is known not to match (the AND of their Slots.nm), once per list and request. */
  private listKnown(list: readonly VarEntry[], rows: Slots[]): Bits {
    let k = this.knownCache.get(list);
    if (k !== undefined) return k;
    // A long list whose values' Slots are all the shared cache's may have been ANDed before (see SlotCache.knownFor).
    const nmv = this.sharedNmv(list, rows);
    if (nmv >= 0) {
      const known = this.shared!.knownFor(rows, -1, nmv);
      if (known != null) {
        this.knownCache.set(list, known);
        return known;
      }
    }
    k = [];
    for (let i = 0; i < list.length; i++) {
      const nm = this.rowSlots(rows, list, i).nm;
      if (nm === undefined) {
        k = [];
        break;
      }
      // Known sets are only read, never changed: a one-value list's is its value's.
      if (i === 0) k = list.length === 1 ? nm : nm.slice();
      else andBits(k, nm);
    }
    this.knownCache.set(list, k);
    if (nmv >= 0) this.shared!.keepKnown(rows, -1, nmv, k);
    return k;
  }

  /** The sum of the Slots.nmv of `list`'s values when it is long enough to remember (see SlotCache.knownFor) and all of them are the shared cache's; else -1. */
  private sharedNmv(list: readonly VarEntry[], rows: Slots[]): number {
    const shared = this.shared;
    if (shared === undefined || list.length < KNOWN_LIST_MIN || list.length > KNOWN_LIST_MAX) return -1;
    let nmv = 0;
    for (let i = 0; i < list.length; i++) {
      const sl = this.rowSlots(rows, list, i);
      if (sl.owner !== shared) return -1;
      nmv += sl.nmv;
    }
    return nmv;
  }

  /**
   * Whether every value `rule` still reads after run-time target removals
   * is known not to match it (Slots.nm): then neither its gate nor its walk
   * is needed. The walk's group check (see PhasePlan) answers the same
   * question without removals; this is only asked for a rule that has some
   * and failed that check. False when it cannot tell (a count, TX or
   * MATCHED_* target, a value not seen yet).
   */
  private knownNoMatch(rule: CompiledRule, sig: number, removals: readonly RuntimeRemoval[]): boolean {
    const known = rule.known;
    if (known == null) return false;
    for (let i = 0; i < known.length; i++) {
      const kt = known[i]!;
      if (removedWhole(removals, kt.t)) continue;
      let b: Bits | null | undefined;
      if (!removesFrom(removals, kt.t)) {
        b = this.knownOf(kt.id, kt.t);
      } else b = this.targetKnown(kt.t, removals);
      if (b !== null && !hasBit(b, sig)) return false;
    }
    return true;
  }

  /**
   * Whether every value of group `g` of targets (see PhasePlan) is known not
   * to match signature `sig`; true when no target has values (nothing can
   * match). Run-time target removals only take values away, so they are not
   * needed here. The targets' known sets do not change during a phase (values
   * learn at its end, flushRejected), so for a group that several rules
   * share their AND is taken once per phase (`cache`): each of those rules
   * then costs one bit test, not one per target. A group of one rule is
   * checked target by target, stopping at the first that fails.
   */
  private groupKnown(plan: PhasePlan, cache: (Bits | null | undefined)[], g: number, sig: number): boolean {
    if (plan.size[g] === 1) {
      const { ids, start, target } = plan;
      for (let k = start[g]!, end = start[g + 1]!; k < end; k++) {
        const b = this.knownOf(ids[k]!, target[ids[k]!]!);
        if (b !== null && !hasBit(b, sig)) return false;
      }
      return true;
    }
    let b = cache[g];
    if (b === undefined) b = cache[g] = this.groupAnd(plan, g);
    return b === null || hasBit(b, sig);
  }

  /** Known-target `id`'s known set (see knownByTarget), taken once per phase. */
  private knownOf(id: number, t: Target): Bits | null {
    let b = this.knownByTarget[id];
    if (b === undefined) b = this.knownByTarget[id] = this.targetKnown(t, undefined, id);
    return b;
  }

  /** The AND of the known sets of group `g`'s targets that have values; null when none has. */
  private groupAnd(plan: PhasePlan, g: number): Bits | null {
    const { ids, start, target } = plan;
    let k: Bits | null = null;
    let own = false;
    for (let i = start[g]!, end = start[g + 1]!; i < end; i++) {
      const b = this.knownOf(ids[i]!, target[ids[i]!]!);
      if (b === null) continue;
      if (k === null) k = b;
      else {
        // Target sets may be a value's own (see listKnown): AND into a copy.
        if (!own) {
          k = k.slice();
          own = true;
        }
        andBits(k, b);
      }
    }
    return k;
  }

  /**
   * The gate found that no value `rule` reads could match it: each of those
   * values (whole collections, as the gate reads them) is known not to match
   * its signature. Collected per target, written to the values once per
   * phase (flushRejected), so that the next request with them skips the gate too.
   */
  private noteRejected(rule: CompiledRule, sig: number): void {
    const known = rule.known;
    if (known == null) return;
    for (let i = 0; i < known.length; i++) {
      const kt = known[i]!;
      let b = this.rejected[kt.id];
      if (b === undefined) {
        b = this.rejected[kt.id] = [];
        this.rejectedTargets.push(kt);
      }
      setBit(b, sig);
    }
  }

  private flushRejected(): void {
    const rejectedTargets = this.rejectedTargets;
    for (let i = 0; i < rejectedTargets.length; i++) {
      const kt = rejectedTargets[i]!;
      const b = this.rejected[kt.id]!;
      this.rejected[kt.id] = undefined;
      const t = kt.t;
      // The values the gate read (see targetHits): key regexes and exclusions only take values away.
      const list = this.valuesOf(t.kind, t.name, t.key);
      if (typeof list === 'string') {
        const sl = this.slotsOf(list);
        learnNoMatchAll(sl, b);
        continue;
      }
      if (list === undefined) continue;
      const rows = this.rowsOf(list);
      for (let i = 0; i < list.length; i++) {
        learnNoMatchAll(this.rowSlots(rows, list, i), b);
      }
    }
    this.rejectedTargets = [];
  }

  /** The signatures every value of target `t` is known not to match (null: no values), its values selected as evalTarget does. */
  private targetKnown(t: Target, removals: readonly RuntimeRemoval[] | undefined, id = -1): Bits | null {
    const list = this.valuesOf(t.kind, t.name, t.key);
    if (typeof list === 'string') return this.slotsOf(list).nm ?? NO_BITS;
    if (list === undefined || list.length === 0) return null;
    const rows = this.rowsOf(list);
    // As evalEntries selects the values (a collection target's key was applied by valuesOf).
    const keyed = t.kind !== T_SCALAR && t.key !== undefined;
    const select = !keyed && (t.key !== undefined || t.keyRx !== undefined);
    if (!select && t.excludes === undefined && removals === undefined) return this.listKnown(list, rows);
    // A selection without run-time removals: remembered by its entries, whose names select (see SlotCache.knownFor).
    const nmv = removals === undefined && id >= 0 ? this.sharedNmv(list, rows) : -1;
    if (nmv >= 0) {
      const known = this.shared!.knownFor(list, id, nmv);
      if (known !== undefined) return known;
    }
    const k = this.selectionKnown(t, list, rows, removals, select);
    if (nmv >= 0) this.shared!.keepKnown(list.slice(), id, nmv, k);
    return k;
  }

  private selectionKnown(t: Target, list: readonly VarEntry[], rows: Slots[], removals: readonly RuntimeRemoval[] | undefined, select: boolean): Bits | null {
    let k: Bits | null = null;
    for (let i = 0; i < list.length; i++) {
      const e = list[i]!;
      if ((select && !selects(t, e.name)) || isExcluded(t, e.name, removals)) continue;
      const nm = this.rowSlots(rows, list, i).nm;
      if (nm === undefined) return NO_BITS;
      if (k === null) k = nm.slice();
      else andBits(k, nm);
    }
    return k;
  }

  private rowsOf(list: readonly VarEntry[]): Slots[] {
    let rows = this.rows.get(list);
    if (rows === undefined) {
      rows = new Array<Slots | undefined>(list.length) as Slots[];
      this.rows.set(list, rows);
    }
    return rows;
  }

  /** Whether any value a gated rule reads (see CompiledRule.gate) may match its operator. */
  private ruleMayMatch(rule: CompiledRule, g: RuleGate): boolean {
    const op = rule.op!.compiled as PrefilteredOperator;
    const k = g.k;
    for (let i = 0; i < g.targets.length; i++) {
      const t = g.targets[i]!;
      let byPipe = this.gateHits[t.id];
      if (byPipe === undefined) byPipe = this.gateHits[t.id] = [];
      let h = byPipe[k];
      if (h === undefined) h = byPipe[k] = this.targetHits(rule, t);
      if (h !== NO_VALUES && mayMatchList(op, h)) return true;
    }
    this.prefiltered++;
    return false;
  }

  /** The factor sets a gate target's values hit after `rule`'s pipeline; its values resolved as evalTarget does. */
  private targetHits(rule: CompiledRule, t: GateTarget): ListHits {
    const vals = this.valuesOf(t.kind, t.name, t.key);
    if (vals === undefined) return NO_VALUES;
    if (typeof vals !== 'string') return vals.length === 0 ? NO_VALUES : this.listHits(rule, vals, this.rowsOf(vals));
    const scalar = vals;
    let sl = this.slotsOf(scalar);
    let v = scalar;
    if (rule.transforms.length !== 0) {
      // As in listHits: a value holding none of the pipeline's trigger bytes
      // comes out equal but for case, so its own hits serve (no transformed
      // copy of a large body to build and scan).
      const trig = rule.pipelineTrigger ?? 'all';
      if (this.changes(trig, scalar, sl)) {
        v = this.transform(rule, scalar, rule.transforms.length - 1, sl);
        sl = this.lastSlots!;
      }
    }
    const u = emptyHits();
    this.addHits(u, v, sl);
    return u;
  }

  /**
   * A scalar or collection target's values as evalTarget finds them: a
   * list (a collection's key applied), a scalar's string, or undefined.
   */
  private valuesOf(kind: number, name: string, key: string | undefined): readonly VarEntry[] | string | undefined {
    const { scalars, collections } = this.vars;
    if (kind === T_SCALAR) return scalars.get(name) ?? collections.get(name);
    return (key !== undefined ? this.keyed(name, key) : collections.get(name)) ?? scalars.get(name);
  }

  /** Entries of a collection whose key equals `key` (lower-cased), through a per-request index. */
  private keyed(name: string, key: string): readonly VarEntry[] {
    const list = this.vars.collections.get(name);
    if (list === undefined) return EMPTY;
    let idx = this.keyIndex.get(list);
    if (idx === undefined) {
      idx = new Map();
      for (const e of list) {
        const k = lowerAscii(e.name);
        const l = idx.get(k);
        if (l) l.push(e);
        else idx.set(k, [e]);
      }
      this.keyIndex.set(list, idx);
    }
    return idx.get(key) ?? EMPTY;
  }

  /**
   * Transforms one value, runs the operator, and on a match runs the
   * per-match actions. With `slots` (the value's own), a value known not to
   * match the rule's signature answers at once, and a new no is remembered.
   */
  private test(
    rule: CompiledRule,
    top: boolean,
    prefix: string,
    name: string,
    raw: string,
    op: CompiledOperator | undefined,
    slots?: Slots,
  ): boolean {
    const sig = rule.sig;
    if (sig === undefined || slots === undefined || !this.prefilter) return this.testValue(rule, top, prefix, name, raw, op, slots);
    const nm = slots.nm;
    if (nm !== undefined && hasBit(nm, sig)) return false;
    if (this.testValue(rule, top, prefix, name, raw, op, slots)) return true;
    learnNoMatch(slots, sig);
    return false;
  }

  private testValue(
    rule: CompiledRule,
    top: boolean,
    prefix: string,
    name: string,
    raw: string,
    op: CompiledOperator | undefined,
    slots: Slots | undefined,
  ): boolean {
    if (op === undefined) return false;
    const o = rule.op!;
    if (rule.multiMatch && rule.transforms.length > 0) {
      // Every distinct stage of the pipeline is tested, the untransformed
      // value first. Each stage is computed from the one before (transform()
      // per stage would redo the earlier steps: quadratic in the pipeline).
      let matched = this.apply(rule, top, prefix, name, raw, raw, slots, o.negated, op);
      const fns = rule.transforms;
      const ids = rule.transformIds;
      // The last stage through transform(): the whole pipeline's output is
      // kept with the value's slots, as for rules without multiMatch.
      const last = fns.length - 1;
      let v = raw;
      let vs = slots ?? this.slotsOf(raw);
      for (let s = 0; s <= last; s++) {
        let out: string;
        if (s === last) {
          out = this.transform(rule, raw, last, slots);
          if (out === v) continue;
          vs = this.lastSlots!;
        } else {
          const id = ids[s]!;
          const known = vs.out[id];
          out = known === undefined ? (vs.out[id] = fns[s]!(v)) : known;
          if (out === v) continue;
          vs = this.stepSlots(fns[s]!, vs, v, out);
        }
        v = out;
        if (this.apply(rule, top, prefix, name, raw, v, vs, o.negated, op)) matched = true;
      }
      return matched;
    }
    if (rule.transforms.length === 0) return this.apply(rule, top, prefix, name, raw, raw, slots, o.negated, op);
    const v = this.transform(rule, raw, rule.transforms.length - 1, slots);
    return this.apply(rule, top, prefix, name, raw, v, this.lastSlots, o.negated, op);
  }

  private apply(
    rule: CompiledRule,
    top: boolean,
    prefix: string,
    name: string,
    raw: string,
    value: string,
    slots: Slots | undefined,
    negated: boolean,
    op: CompiledOperator,
  ): boolean {
    let caps: readonly string[] | undefined;
    if (this.prefilter && !this.mayMatch(op as PrefilteredOperator, value, slots)) {
      // None of the operator's required literals occurs in the value, or a
      // byte set of which every match has one member: it cannot match.
      this.prefiltered++;
    } else {
      this.operatorRuns++;
      // The groups are read only by a rule with `capture` whose operator is not negated (below).
      const groups = rule.capture && !negated;
      const id = (op as PrefilteredOperator).memoId;
      if (id !== undefined && slots !== undefined && this.prefilter) {
        // Operators are pure: a string's answer is remembered with its slots.
        const memo = slots.ops;
        let at = -1;
        if (memo !== undefined) {
          for (let j = 0; j < memo.length; j += 2) {
            if (memo[j] === id) {
              at = j + 1;
              break;
            }
          }
        }
        if (at < 0) {
          caps = answer(op, value, groups);
          (slots.ops ??= []).push(id, caps ?? null);
        } else {
          caps = (memo![at] as readonly string[] | null) ?? undefined;
          // A match remembered without its groups, for a rule that reads them.
          if (caps === MATCHED && groups) {
            caps = op.match(value);
            memo![at] = caps ?? null;
          }
        }
      } else caps = answer(op, value, groups);
    }
    if (negated ? caps !== undefined : caps === undefined) return false;
    // Built only on a match: most values never match.
    const varName = prefix === '' ? name : prefix + name;
    if (rule.capture && caps !== undefined) {
      for (let i = 0; i < caps.length && i < 10; i++) {
        const k = String(i);
        this.tx.set(k, { name: k, value: caps[i] ?? '' });
      }
    }
    this.matchedVar = value;
    this.matchedVarName = varName;
    this.matchedVars.push({ name: varName, value });
    this.runSetvars(rule);
    if (top) {
      if (!rule.chain) {
        if (rule.log) this.record(rule, varName, raw);
      } else if (!this.haveFirst) {
        this.haveFirst = true;
        this.firstName = varName;
        this.firstRaw = raw;
      }
    }
    return true;
  }

  /**
   * Whether the operator's prefilters let `value` through: its factors and
   * clauses, or for a plain value its plain prefilter (the pattern's
   * restriction decides, see prefilter.ts, Plain values). False: it cannot match.
   */
  private mayMatch(op: PrefilteredOperator, value: string, slots: Slots | undefined): boolean {
    const plain = op.plain;
    if (plain !== undefined && this.isPlain(value, slots)) {
      if (plain.never) return false;
      const ids = plain.factorSetIds;
      if (ids !== undefined) for (let k = 0; k < ids.length; k++) if (!this.hasFactor(ids[k]!, value, slots)) return false;
      return plain.clauses === undefined || this.meets(plain.clauses, value, slots);
    }
    const fid = op.factorSetId;
    if (fid !== undefined && !this.hasFactor(fid, value, slots)) return false;
    return op.clauses === undefined || this.meets(op.clauses, value, slots);
  }

  /** Whether `value` (whose slots are `slots`, when known) contains a factor of set `fid`. */
  private hasFactor(fid: number, value: string, slots: Slots | undefined): boolean {
    const h = this.hits(value, slots ?? this.slotsOf(value));
    return h !== null && hasBit(h, fid);
  }

  /** The factor sets the value hits as bits (null: none, the usual case), scanned once per distinct value. */
  private hits(value: string, sl: Slots): Bits | null {
    let h = sl.hits;
    if (h === undefined) {
      const ids = this.factors.scanIds(value);
      h = null;
      if (ids.length !== 0) {
        h = newBits(this.factors.size);
        for (let j = 0; j < ids.length; j++) h[(ids[j]! / 30) | 0]! |= 1 << ids[j]! % 30;
      }
      sl.hits = h;
    }
    return h;
  }

  /**
   * Which factor sets the values of `list` hit after `rule`'s
   * transformations, plain and other values apart (see mayMatchList):
   * computed once per list and pipeline, for every rule that reads them.
   * The untransformed values' hits serve every pipeline; a pipeline adds
   * only the values it can change beyond case (transforms.ts
   * TransformTrigger), and shares them when it changes none.
   */
  private listHits(rule: CompiledRule, list: readonly VarEntry[], rows: Slots[]): ListHits {
    let byPipe = this.listHitCache.get(list);
    if (byPipe === undefined) {
      byPipe = [];
      this.listHitCache.set(list, byPipe);
    }
    const k = rule.transforms.length === 0 ? 0 : rule.pipelineId! + 1;
    let u = byPipe[k];
    if (u !== undefined) return u;
    let base = byPipe[0];
    if (base === undefined) {
      base = byPipe[0] = this.rawListHits(list, rows);
      if (k === 0) return base;
    }
    const trig = rule.pipelineTrigger ?? 'all';
    if (trig !== 'all' && !triggers(trig, base.pres, base.spacePair)) {
      byPipe[k] = base;
      return base;
    }
    u = { plain: base.plain, other: base.other, plainBits: base.plainBits?.slice() ?? null, otherBits: base.otherBits?.slice() ?? null, pres: base.pres, spacePair: base.spacePair };
    const last = rule.transforms.length - 1;
    for (let i = 0; i < list.length; i++) {
      const raw = list[i]!.value;
      const rs = rows[i]!;
      if (!this.changes(trig, raw, rs)) continue;
      const v = this.transform(rule, raw, last, rs);
      this.addHits(u, v, this.lastSlots!);
    }
    byPipe[k] = u;
    return u;
  }

  /** listHits for the values as they are, with the union of their byte presence. */
  private rawListHits(list: readonly VarEntry[], rows: Slots[]): ListHits {
    const u = emptyHits();
    let pres: Int32Array | null = new Int32Array(8);
    for (let i = 0; i < list.length; i++) {
      const e = list[i]!;
      const v = e.value;
      const vs = this.rowSlots(rows, list, i);
      this.addHits(u, v, vs);
      const p = this.presence(v, vs);
      if (p === null) pres = null;
      else if (pres !== null) for (let w = 0; w < 8; w++) pres[w]! |= p[w]!;
      if (!u.spacePair && this.spacePair(v, vs)) u.spacePair = true;
    }
    u.pres = pres;
    return u;
  }

  private addHits(u: ListHits, v: string, vs: Slots): void {
    const h = this.hits(v, vs);
    if (this.isPlain(v, vs)) {
      u.plain++;
      if (h !== null) u.plainBits = orBits(u.plainBits, h);
    } else {
      u.other++;
      if (h !== null) u.otherBits = orBits(u.otherBits, h);
    }
  }

  private spacePair(v: string, sl: Slots): boolean {
    let p = sl.spacePair;
    if (p === undefined) p = sl.spacePair = hasSpacePair(v);
    return p;
  }

  /** Whether `value` has a byte of each clause (see prefilter.ts rxClauses); true when it cannot tell. */
  private meets(clauses: readonly Uint32Array[], value: string, slots: Slots | undefined): boolean {
    const p = this.presence(value, slots ?? this.slotsOf(value));
    return p === null || meetsClauses(clauses, p, 0);
  }

  /** Whether `value` has no byte of PLAIN_EXCLUDED (false when it cannot tell). */
  private isPlain(value: string, slots: Slots | undefined): boolean {
    const p = this.presence(value, slots ?? this.slotsOf(value));
    return p !== null && isPlainPresence(p, 0);
  }

  /** The value's byte-presence bitmap, computed once per distinct value; null when it has chars above 0xff. */
  private presence(value: string, sl: Slots): Int32Array | null {
    let p = sl.pres;
    if (p === undefined) {
      // 32 bytes: small typed arrays live on V8's heap and cost little to allocate.
      p = new Int32Array(8);
      if (!bytePresence(value, p, 0)) p = null;
      sl.pres = p;
    }
    return p;
  }

  /**
   * The value after transforms[0..upto]. Each (transformation, input string)
   * pair is computed once per request, whichever rule asks. A collection
   * entry's own slots come from its list (no hashing of the value per rule);
   * a step that leaves the string unchanged (the usual case for benign
   * values) keeps using the same slots, so only changed strings are looked up.
   */
  private transform(rule: CompiledRule, raw: string, upto: number, rawSlots: Slots | undefined): string {
    const fns = rule.transforms;
    const ids = rule.transformIds;
    let v = raw;
    let slots = rawSlots ?? this.slotsOf(raw);
    // The whole pipeline: rules sharing it (most of a CRS file) reuse the first one's walk.
    const pid = upto === fns.length - 1 ? rule.pipelineId : undefined;
    const start = slots;
    if (pid !== undefined && start.pipeOut !== undefined) {
      const done = start.pipeOut[pid];
      if (done !== undefined) {
        this.lastSlots = start.pipeSlots![pid];
        return done;
      }
    }
    for (let j = 0; j <= upto; j++) {
      const id = ids[j]!;
      let out = slots.out[id];
      if (out === undefined) {
        out = fns[j]!(v);
        slots.out[id] = out;
      }
      if (out !== v) {
        slots = this.stepSlots(fns[j]!, slots, v, out);
        v = out;
      }
    }
    if (pid !== undefined) {
      (start.pipeOut ??= [])[pid] = v;
      (start.pipeSlots ??= [])[pid] = slots;
    }
    this.lastSlots = slots;
    return v;
  }

  /**
   * The slots of `out`, what transformation `fn` made of `from` (whose slots
   * are `fromSlots`). When `from` holds none of fn's trigger bytes (see
   * transforms.ts TransformTrigger), `out` equals it but for ASCII case, and
   * what the prefilters know of it (factor hits, byte presence: both
   * case-folded) is taken over instead of scanning `out` again.
   */
  private stepSlots(fn: Transform, fromSlots: Slots, from: string, out: string): Slots {
    // What a string not kept (see SlotCache.seenBefore) transforms into is not kept either: it would keep nothing useful.
    const sl = fromSlots.owner === undefined ? this.ownSlots(out) : this.slotsOf(out);
    if (sl.hits !== undefined || fromSlots.hits === undefined || !this.prefilter) return sl;
    if (this.changes(transformTrigger(fn), from, fromSlots)) return sl;
    sl.hits = fromSlots.hits;
    if (sl.pres === undefined) sl.pres = fromSlots.pres;
    if (sl.spacePair === undefined && fromSlots.spacePair !== undefined) sl.spacePair = fromSlots.spacePair;
    return sl;
  }

  /** Whether a transformation (or pipeline) with trigger `trig` may change `v` other than in ASCII case. */
  private changes(trig: TransformTrigger, v: string, sl: Slots): boolean {
    return trig === 'all' || triggers(trig, this.presence(v, sl), trig.spacePair && this.spacePair(v, sl));
  }

  /** The Slots of `list[i]`, kept in the list's `rows` once looked up (see rowsOf). */
  private rowSlots(rows: Slots[], list: readonly VarEntry[], i: number): Slots {
    return (rows[i] ??= this.entrySlots(list[i]!));
  }

  /**
   * A list entry's slots: the ones on the entry (VarEntry.memo) when this
   * transaction's cache made them, else looked up and, when the entry takes
   * a memo, left on it.
   */
  private entrySlots(e: VarEntry): Slots {
    const m = e.memo;
    if (m != null && (m as Slots).owner === this.shared) return m as Slots;
    const sl = this.slotsOf(e.value);
    if (m !== undefined && sl.owner !== undefined) e.memo = sl;
    return sl;
  }

  private slotsOf(v: string): Slots {
    const shared = this.shared;
    if (shared === undefined || v.length > SHARED_MAX_LENGTH) return this.ownSlots(v);
    const k = slotKey(v);
    const kept = shared.find(k, v);
    if (kept !== undefined) return kept;
    return this.ownOf(k, v) ?? (shared.seenBefore(k) ? shared.keep(k, v) : this.newOwn(k, v));
  }

  /** This transaction's own Slots of `v` (never kept across requests). */
  private ownSlots(v: string): Slots {
    const k = slotKey(v);
    return this.ownOf(k, v) ?? this.newOwn(k, v);
  }

  /** The own Slots this transaction already made for `v` (key `k`), if any. */
  private ownOf(k: SlotKey, v: string): Slots | undefined {
    const sl = this.own.get(k);
    return sl !== undefined && sl.long === longOf(k, v) ? sl : undefined;
  }

  /** New own Slots for `v` (key `k`, see slotKey). */
  private newOwn(k: SlotKey, v: string): Slots {
    const sl = new Slots(undefined);
    sl.long = longOf(k, v);
    this.own.set(k, sl);
    return sl;
  }

  private runSetvars(rule: CompiledRule): void {
    const setvars = rule.setvars;
    for (let i = 0; i < setvars.length; i++) {
      const s = setvars[i]!;
      const name = typeof s.key === 'string' ? s.key : this.expand(s.key);
      const lk = s.lkey ?? lowerAscii(name);
      switch (s.op) {
        case 'set': {
          const value = this.expand(s.value);
          // A new entry, never a change in place: entries are shared with the prologue's map (see Prologue.map).
          const e = this.tx.get(lk);
          this.tx.set(lk, { name: e ? e.name : name, value });
          break;
        }
        case 'add':
        case 'sub': {
          const d = toInt(this.expand(s.value));
          const e = this.tx.get(lk);
          const cur = toInt(e?.value);
          const value = String(s.op === 'add' ? cur + d : cur - d);
          this.tx.set(lk, { name: e ? e.name : name, value });
          break;
        }
        case 'delete':
          this.tx.delete(lk);
          break;
      }
    }
  }

  private runCtl(c: CtlOp): void {
    switch (c.ctl) {
      case 'ruleRemoveById':
        for (const [lo, hi] of c.ranges) for (const r of this.rules.rulesById(lo, hi)) this.markRemoved(r);
        break;
      case 'ruleRemoveByTag':
        for (const r of this.rules.rulesByTag(c.tag)) this.markRemoved(r);
        break;
      case 'ruleRemoveTargetById':
        for (const [lo, hi] of c.ranges) for (const r of this.rules.rulesById(lo, hi)) this.removeTarget(r, c.target);
        break;
      case 'ruleRemoveTargetByTag': {
        // CRS's 941010 runs this on most requests (33 XSS rules): one shared list per ctl, copied only when a rule gets a second removal.
        let one = onlyRemoval.get(c);
        if (one === undefined) onlyRemoval.set(c, (one = Object.freeze([c.target])));
        if (this.targetRemovals === undefined) {
          // The request's first removal: the whole per-rule table is the same every time, so it is shared too (see removeTarget).
          this.targetRemovals = presetRemovals(this.rules, c, one);
          this.sharedRemovals = true;
          break;
        }
        for (const r of this.rules.rulesByTag(c.tag)) this.removeTarget(r, c.target, one);
        break;
      }
      case 'requestBodyProcessor':
        this.bodyProcessor = c.value;
        break;
      case 'forceRequestBodyVariable':
        this.forceBody = c.on;
        break;
      case 'requestBodyAccess':
        this.bodyAccess = c.on;
        break;
      case 'ruleEngine':
        if (c.value === 'off') this.stopped = true;
        else this.detectionOnly = c.value === 'detectiononly';
        break;
    }
  }

  private markRemoved(r: CompiledRule): void {
    if (this.removed === undefined) this.removed = new Uint8Array(this.rules.baseSize);
    this.removed[r.index] = 1;
  }

  /** Adds a run-time removal of target `t` to rule `r`; `only` is a shared list holding just `t`, used when the rule has none yet. */
  private removeTarget(r: CompiledRule, t: TargetRef, only?: readonly RuntimeRemoval[]): void {
    // Holes read as undefined (no fill: this runs on most requests, CRS's 941010 removes a target from the XSS rules).
    if (this.targetRemovals === undefined) this.targetRemovals = new Array<readonly RuntimeRemoval[] | undefined>(this.rules.baseSize);
    else if (this.sharedRemovals) {
      // A preset table (see presetRemovals) is shared by transactions: this one gets its own copy.
      this.targetRemovals = this.targetRemovals.slice();
      this.sharedRemovals = false;
    }
    const l = this.targetRemovals[r.index];
    // Lists may be shared (`only`): never changed in place.
    this.targetRemovals[r.index] = l === undefined ? (only ?? [t]) : [...l, t];
  }

  /** After a full match of a chain starter: log, then the disruptive action. */
  private finish(rule: CompiledRule): void {
    if (rule.log) {
      if (rule.chain) {
        if (this.haveFirst) this.record(rule, this.firstName, this.firstRaw);
      } else if (!rule.op) {
        this.record(rule, '', '');
      }
    }
    const d = rule.disruptive;
    if (d === undefined || d === 'pass' || d === 'block') return;
    if (this.detectionOnly) return;
    if (d === 'deny' || d === 'drop') {
      this.interruption = { ruleId: rule.id, action: d, status: rule.status ?? 403 };
    } else {
      // allow: the rest of the request's rules do not run (allow:phase only ends this phase).
      if (d !== 'allow:phase') this.stopped = true;
    }
  }

  private record(rule: CompiledRule, variable: string, raw: string): void {
    if (this.matches.length >= this.rules.maxMatches) {
      this.dropped++;
      return;
    }
    const m: WafMatch = {
      id: rule.id,
      msg: rule.msg === undefined ? '' : this.expand(rule.msg),
      tags: rule.tags,
      file: rule.file,
      line: rule.line,
      variable,
      value: raw.length > MAX_VALUE_IN_MATCH ? raw.slice(0, MAX_VALUE_IN_MATCH) : raw,
      data: rule.logdata === undefined ? '' : this.expand(rule.logdata),
    };
    if (rule.severity !== undefined) m.severity = rule.severity;
    this.matches.push(m);
  }

  // -------------------------------------------------------------------------

  private expand(m: Macro): string {
    if (typeof m === 'string') return m;
    let out = '';
    for (const p of m) out += typeof p === 'string' ? p : this.resolve(p);
    return out;
  }

  private resolve(r: MacroRef): string {
    switch (r.name) {
      case 'TX':
        return r.key === undefined ? '' : (this.tx.get(r.key)?.value ?? '');
      case 'MATCHED_VAR':
        return this.matchedVar;
      case 'MATCHED_VAR_NAME':
        return this.matchedVarName;
      case 'MATCHED_VARS':
        return this.matchedVars[0]?.value ?? '';
      case 'MATCHED_VARS_NAMES':
        return this.matchedVars[0]?.name ?? '';
      default: {
        if (r.key !== undefined) return this.keyed(r.name, r.key)[0]?.value ?? '';
        const s = this.vars.scalars.get(r.name);
        if (s !== undefined) return s;
        return this.vars.collections.get(r.name)?.[0]?.value ?? '';
      }
    }
  }
}

/**
 * How many of a list's values are plain (see prefilter.ts) and which factor
 * sets they hit (few: most values hit none), plain and other values apart;
 * for a list's untransformed values, also which bytes occur (null: a char
 * above 0xff, or not known) and whether a space pair does.
 */
interface ListHits {
  plain: number;
  other: number;
  plainBits: Bits | null;
  otherBits: Bits | null;
  pres: Int32Array | null;
  spacePair: boolean;
}

function emptyHits(): ListHits {
  return { plain: 0, other: 0, plainBits: null, otherBits: null, pres: null, spacePair: false };
}

/** A target with no values. */
const NO_VALUES: ListHits = emptyHits();

/** A set of factor set ids: 30 per word (small integers V8 keeps unboxed). */
type Bits = number[];

/** A match whose groups were not asked for (CompiledOperator.test): only its being a match is known. */
const MATCHED: readonly string[] = Object.freeze([]);

/** An operator's answer for `value`: its captures when `groups` asks for them, else MATCHED or undefined. */
function answer(op: CompiledOperator, value: string, groups: boolean): readonly string[] | undefined {
  if (groups || op.test === undefined) return op.match(value);
  return op.test(value) ? MATCHED : undefined;
}

/** The empty set (never written to). */
const NO_BITS: Bits = [];

function newBits(size: number): Bits {
  return new Array<number>(Math.ceil(size / 30)).fill(0);
}

function hasBit(b: Bits, id: number): boolean {
  const w = (id / 30) | 0;
  // A read past the end would walk the prototype chain (slow in V8): bits past it are 0.
  return w < b.length && ((b[w]! >>> id % 30) & 1) === 1;
}

/** Sets bit `id` in `b`, growing it as needed (holes read as 0). */
function setBit(b: Bits, id: number): void {
  const w = (id / 30) | 0;
  while (b.length <= w) b.push(0);
  b[w]! |= 1 << id % 30;
}

/** Records that the string of `sl` does not match signature `sig` (see Slots.nm). */
function learnNoMatch(sl: Slots, sig: number): void {
  // What a transaction's own Slots would learn is read only by later requests, which never see them (see SlotCache.seenBefore).
  if (sl.owner === undefined) return;
  setBit((sl.nm ??= []), sig);
  sl.nmv++;
}

/** Records that the string of `sl` matches none of the signatures in `b`. */
function learnNoMatchAll(sl: Slots, b: Bits): void {
  if (sl.owner === undefined) return;
  sl.nm = orBits(sl.nm ?? null, b);
  sl.nmv++;
}

/** `into` & `from`, in `into` (words past `from`'s end become 0). */
function andBits(into: Bits, from: Bits): void {
  // Words past `from`'s end are 0: `into` is cut there (hasBit reads past the end as 0).
  const n = from.length < into.length ? from.length : into.length;
  for (let w = 0; w < n; w++) into[w] = into[w]! & from[w]!;
  if (n < into.length) into.length = n;
}

/** `into` | `from`, in `into` (a copy of `from` when `into` is null; grown to `from`'s length). */
function orBits(into: Bits | null, from: Bits): Bits {
  if (into === null) return from.slice();
  while (into.length < from.length) into.push(0);
  for (let w = 0; w < from.length; w++) into[w]! |= from[w]!;
  return into;
}

/** Whether a value (or list) with these bytes and space pairs may be changed by a pipeline with this trigger. */
function triggers(t: Exclude<TransformTrigger, 'all'>, pres: Int32Array | null, spacePair: boolean): boolean {
  if (pres === null || (t.spacePair && spacePair)) return true;
  const b = t.bytes;
  return ((pres[0]! & b[0]!) | (pres[1]! & b[1]!) | (pres[2]! & b[2]!) | (pres[3]! & b[3]!) |
    (pres[4]! & b[4]!) | (pres[5]! & b[5]!) | (pres[6]! & b[6]!) | (pres[7]! & b[7]!)) !== 0;
}



/**
 * Whether any value of a list may match the operator, by the prefilters
 * apply() uses for each value: the operator's factors for values that are
 * not plain, its plain prefilter (or else its factors) for plain ones.
 * False only when no value could pass them.
 */
function mayMatchList(op: PrefilteredOperator, u: ListHits): boolean {
  const fid = op.factorSetId;
  if (u.other !== 0 && (fid === undefined || (u.otherBits !== null && hasBit(u.otherBits, fid)))) return true;
  if (u.plain === 0) return false;
  const plain = op.plain;
  const pb = u.plainBits;
  if (plain === undefined) return fid === undefined || (pb !== null && hasBit(pb, fid));
  if (plain.never) return false;
  const ids = plain.factorSetIds;
  if (ids !== undefined) for (let k = 0; k < ids.length; k++) if (pb === null || !hasBit(pb, ids[k]!)) return false;
  return true;
}

function removedWhole(removals: readonly RuntimeRemoval[], t: Target): boolean {
  for (let i = 0; i < removals.length; i++) {
    const r = removals[i]!;
    if (r.name !== t.name || r.keyRx !== undefined) continue;
    // `ctl:ruleRemoveTargetById=1;ARGS` drops the target; `...;ARGS:x` drops only the target `ARGS:x` as a whole if it was written so.
    if (r.key === undefined || (t.key !== undefined && r.key === t.key)) return true;
  }
  return false;
}

/** Whether run-time removals take any value from target `t` (see isExcluded). */
function removesFrom(removals: readonly RuntimeRemoval[], t: Target): boolean {
  for (let i = 0; i < removals.length; i++) {
    const r = removals[i]!;
    if (r.name === t.name && (r.key !== undefined || r.keyRx !== undefined)) return true;
  }
  return false;
}

function isExcluded(t: Target, name: string, removals: readonly RuntimeRemoval[] | undefined): boolean {
  const excludes = t.excludes;
  if (excludes !== undefined) for (let i = 0; i < excludes.length; i++) if (selects(excludes[i]!, name)) return true;
  if (removals !== undefined) {
    for (let i = 0; i < removals.length; i++) {
      const r = removals[i]!;
      if (r.name === t.name && (r.key !== undefined || r.keyRx !== undefined) && selects(r, name)) return true;
    }
  }
  return false;
}
