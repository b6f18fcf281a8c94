// Replays the OWASP CRS regression tests (go-ftw YAML) against any
// host:port over raw TCP and measures how many attack stages are blocked.
//
// The rig judges from outside: a stage is blocked when the answer is 403
// (the WAF) or 400 (the HTTP parser refused a malformed input), or when the
// connection is closed or reset before any response. It never reads WAF logs,
// so it cannot tell which rule fired: a positive stage blocked by some other
// rule still counts as blocked.
//
// Request bytes follow go-ftw (coreruleset/go-ftw, ftwhttp/request.go and
// test/*.go), because the CRS expectations are calibrated against it:
//   - request line `METHOD URI VERSION\r\n`, defaults GET, /, HTTP/1.1;
//   - the YAML headers in byte order of their names (go-ftw builds its header
//     list from a map, sorted), each `Name: value\r\n`, nothing else is added
//     (no Host when the test has none);
//   - `data` goes through go-ftw's template step (only `{{ "x" | repeat N }}`
//     is used by CRS tests);
//   - with autocomplete_headers (default true) and non-empty data: add
//     `Content-Type: application/x-www-form-urlencoded` if there is no
//     Content-Type; when the Content-Type is exactly that and the data does not
//     look escaped (no `%`, no `+`), each `&`-separated `key=value` is
//     query-escaped (Go url.QueryEscape) on both sides of the first `=`;
//   - a Content-Type containing `multipart/form-data;` turns every LF of the
//     body into CRLF (even without autocomplete);
//   - with autocomplete_headers: `Connection: close` unless a Connection header
//     exists, then `Content-Length` (body length after the steps above) unless
//     one exists, when the body is non-empty or the method is POST, PUT, PATCH
//     or DELETE;
//   - `encoded_request` is base64 of the whole request, sent as is.
// YAML strings are sent as UTF-8 bytes, as go-ftw does.
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { basename, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parse as parseYaml } from 'yaml';
import { CRS_RULES_DIR, CRS_TESTS_ROOT } from '../helpers/waf-data.js';

export const DEFAULT_TESTS_DIR = join(CRS_TESTS_ROOT, 'tests/regression/tests');
export const DEFAULT_RULES_DIR = CRS_RULES_DIR;

/** A stage's input as the YAML gives it (every scalar kept as its text). */
export interface FtwInput {
  method?: string;
  uri?: string;
  version?: string;
  headers?: Record<string, string>;
  data?: string;
  encoded_request?: string;
  /** Default true. `stop_magic: true` or `no_autocomplete_headers: true` turn it off too. */
  autocomplete_headers?: boolean;
}

export interface FtwStage {
  /** YAML path relative to the tests folder. */
  file: string;
  /** Three-digit family from the folder name: 930, 942, ... */
  family: string;
  /** The rule the test file is about (`rule_id`). */
  ruleId: number;
  testId: number;
  /** Index of the stage within its test (0-based). */
  stage: number;
  /** go-ftw's test title: `<ruleId>-<testId>`. */
  title: string;
  desc: string;
  input: FtwInput;
  expectIds: number[];
  noExpectIds: number[];
  status: number[];
  /** The stage expects its rule to fire (or the request to be refused): an attack the WAF should block. */
  positive: boolean;
  /** `paranoia-level/N` of ruleId in the rule files; undefined when the rule was not found. */
  paranoia: number | undefined;
}

// ---------------------------------------------------------------------------
// Rule paranoia levels

/**
 * Rule id -> paranoia level, from `tag:'paranoia-level/N'` in the rule files.
 * A rule without the tag takes the level of the section it sits in (the
 * `TX:DETECTION_PARANOIA_LEVEL "@lt N"` skip markers), so none is lost.
 */
export function ruleParanoiaLevels(rulesDir: string = DEFAULT_RULES_DIR): Map<number, number> {
  const levels = new Map<number, number>();
  for (const name of readdirSync(rulesDir).sort()) {
    if (!name.endsWith('.conf')) continue;
    const text = readFileSync(join(rulesDir, name), 'utf8');
    // Directives continue over lines ending in a backslash.
    const directives = text.replace(/\\\r?\n/g, ' ').split(/\r?\n/);
    let section = 1;
    let chainOpen = false;
    for (const d of directives) {
      const line = d.trim();
      if (!/^Sec(Rule|Action)\b/.test(line)) continue;
      const marker = /DETECTION_PARANOIA_LEVEL\s+"@lt\s+(\d)"/.exec(line);
      // The actions are the last quoted argument; `chain` and `id` are read there only.
      const actions = /"((?:[^"\\]|\\.)*)"\s*$/.exec(line)?.[1] ?? '';
      const id = /(?:^|,)\s*id:'?(\d+)/.exec(actions);
      const chained = /(?:^|,)\s*chain\s*(?:,|$)/.test(actions);
      if (id && !chainOpen) {
        if (marker) section = Number(marker[1]);
        else {
          const tag = /tag:'paranoia-level\/(\d)'/.exec(line);
          levels.set(Number(id[1]), tag ? Number(tag[1]) : section);
        }
      }
      chainOpen = chained;
    }
  }
  return levels;
}

// ---------------------------------------------------------------------------
// YAML loading

type Yaml = Record<string, unknown>;

function asList(v: unknown): unknown[] {
  if (v === undefined || v === null || v === '') return [];
  return Array.isArray(v) ? v : [v];
}

function asNumbers(v: unknown): number[] {
  return asList(v)
    .map((x) => Number(x))
    .filter((n) => Number.isFinite(n));
}

function asBool(v: unknown): boolean | undefined {
  if (v === undefined || v === null || v === '') return undefined;
  return /^(true|yes|on)$/i.test(String(v));
}

function toInput(raw: Yaml): FtwInput {
  const input: FtwInput = {};
  for (const k of ['method', 'uri', 'version', 'data', 'encoded_request'] as const) {
    if (raw[k] !== undefined && raw[k] !== null) input[k] = String(raw[k]);
  }
  if (raw.headers && typeof raw.headers === 'object') {
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(raw.headers as Yaml)) headers[k] = v === null || v === undefined ? '' : String(v);
    input.headers = headers;
  }
  let auto = asBool(raw.autocomplete_headers);
  const stop = asBool(raw.stop_magic) ?? asBool(raw.no_autocomplete_headers);
  if (auto === undefined && stop !== undefined) auto = !stop;
  if (auto !== undefined) input.autocomplete_headers = auto;
  return input;
}

/** Parses one go-ftw YAML file into its stages (all stages, positive or not). */
export function parseFtwYaml(text: string, file: string, levels: Map<number, number>): FtwStage[] {
  // failsafe: every scalar stays the text it was written as (a header value
  // `0x5c` is a string, not 92), as go-ftw reads them into strings.
  const doc = parseYaml(text, { schema: 'failsafe', uniqueKeys: false }) as Yaml | null;
  if (!doc || typeof doc !== 'object') return [];
  const dir = file.split('/')[0] ?? '';
  const family = /^(?:REQUEST|RESPONSE)-(\d{3})-/.exec(dir)?.[1] ?? '';
  const fromName = Number(basename(file, '.yaml'));
  let fileRuleId = doc.rule_id !== undefined ? Number(doc.rule_id) : fromName;
  // A rule_id naming no rule while the file name does is a typo in the test
  // file (CRS 4.28 933200.yaml says 9331200): the file name is the rule.
  if (!levels.has(fileRuleId) && levels.has(fromName)) fileRuleId = fromName;
  const out: FtwStage[] = [];
  asList(doc.tests).forEach((t, ti) => {
    const test = t as Yaml;
    const ruleId = test.rule_id !== undefined ? Number(test.rule_id) : fileRuleId;
    const testId = test.test_id !== undefined ? Number(test.test_id) : ti + 1;
    const title = test.test_title !== undefined ? String(test.test_title) : `${ruleId}-${testId}`;
    asList(test.stages).forEach((s, si) => {
      // v1 files wrap each stage in `stage:`.
      const stage = ((s as Yaml).stage ?? s) as Yaml;
      const output = (stage.output ?? {}) as Yaml;
      const log = (output.log ?? {}) as Yaml;
      const expectIds = asNumbers(log.expect_ids ?? output.log_contains_ids);
      const noExpectIds = asNumbers(log.no_expect_ids);
      const status = asNumbers(output.status);
      out.push({
        file,
        family,
        ruleId,
        testId,
        stage: si,
        title,
        desc: test.desc !== undefined ? String(test.desc).trim() : '',
        input: toInput((stage.input ?? {}) as Yaml),
        expectIds,
        noExpectIds,
        status,
        positive: isPositive(ruleId, expectIds, status),
        paranoia: levels.get(ruleId),
      });
    });
  });
  return out;
}

/**
 * An attack stage: it expects its own rule in the log, or expects the
 * request refused outright (status 403, or 400 for inputs the HTTP parser
 * must reject; both count as a block).
 */
export function isPositive(ruleId: number, expectIds: number[], status: number[]): boolean {
  return expectIds.includes(ruleId) || status.includes(403) || status.includes(400);
}

export interface LoadOptions {
  testsDir?: string;
  rulesDir?: string;
  /** Three-digit families to load (folder prefix number); all when omitted. */
  families?: string[];
}

/** Loads every stage of the selected families, in folder and file order. */
export function loadFtwStages(opts: LoadOptions = {}): FtwStage[] {
  const testsDir = opts.testsDir ?? DEFAULT_TESTS_DIR;
  const levels = ruleParanoiaLevels(opts.rulesDir ?? DEFAULT_RULES_DIR);
  const want = opts.families ? new Set(opts.families) : undefined;
  const out: FtwStage[] = [];
  for (const dir of readdirSync(testsDir).sort()) {
    const fam = /^(?:REQUEST|RESPONSE)-(\d{3})-/.exec(dir)?.[1];
    if (!fam || (want && !want.has(fam))) continue;
    for (const f of readdirSync(join(testsDir, dir)).sort()) {
      if (!f.endsWith('.yaml')) continue;
      const rel = `${dir}/${f}`;
      out.push(...parseFtwYaml(readFileSync(join(testsDir, rel), 'utf8'), rel, levels));
    }
  }
  return out;
}

// ---------------------------------------------------------------------------
// Request bytes

/** go-ftw's data template step; CRS uses only `{{ "x" | repeat N }}`. Other text is kept. */
export function expandDataTemplate(data: string): string {
  return data.replace(/\{\{-?\s*"((?:[^"\\]|\\.)*)"\s*\|\s*repeat\s+(\d+)\s*-?\}\}/g, (_m, s: string, n: string) =>
    (JSON.parse(`"${s}"`) as string).repeat(Number(n)),
  );
}

/** Go's url.QueryEscape on bytes: unreserved kept, space as `+`, the rest %XX. */
export function goQueryEscape(bytes: Buffer): string {
  let out = '';
  for (const c of bytes) {
    if ((c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a) || c === 0x2d || c === 0x2e || c === 0x5f || c === 0x7e) {
      out += String.fromCharCode(c);
    } else if (c === 0x20) out += '+';
    else out += '%' + c.toString(16).toUpperCase().padStart(2, '0');
  }
  return out;
}

/**
 * go-ftw's form encoding: when unescaping would leave the data unchanged (no
 * `%`, no `+`), escape each `&`-separated token, keeping the first `=`.
 */
export function encodeFormData(data: Buffer): Buffer {
  if (data.length === 0 || data.includes(0x25) || data.includes(0x2b)) return data;
  const parts: string[] = [];
  let rest = data;
  while (rest.length > 0) {
    const amp = rest.indexOf(0x26);
    const token = amp === -1 ? rest : rest.subarray(0, amp);
    rest = amp === -1 ? Buffer.alloc(0) : rest.subarray(amp + 1);
    const eq = token.indexOf(0x3d);
    parts.push(eq === -1 ? goQueryEscape(token) : `${goQueryEscape(token.subarray(0, eq))}=${goQueryEscape(token.subarray(eq + 1))}`);
  }
  return Buffer.from(parts.join('&'), 'latin1');
}

function byteCompare(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

export interface BuildOptions {
  /**
   * go-ftw's escaping of unescaped form data (default true). false sends the
   * YAML data byte for byte, headers still completed.
   */
  encodeForm?: boolean;
}

/** The exact bytes go-ftw sends for a stage input. */
export function buildFtwRequest(input: FtwInput, opts: BuildOptions = {}): Buffer {
  if (input.encoded_request) return Buffer.from(input.encoded_request, 'base64');
  const method = input.method ?? 'GET';
  const auto = input.autocomplete_headers ?? true;
  const headers: [string, string][] = Object.keys(input.headers ?? {})
    .sort(byteCompare)
    .map((k) => [k, input.headers![k]!]);
  const find = (name: string): [string, string] | undefined => headers.find(([k]) => k.toLowerCase() === name.toLowerCase());
  let data: Buffer = Buffer.from(expandDataTemplate(input.data ?? ''), 'utf8');
  if (data.length > 0 && auto) {
    if (!find('Content-Type')) headers.push(['Content-Type', 'application/x-www-form-urlencoded']);
    if (headers.some(([k, v]) => k.toLowerCase() === 'content-type' && v.toLowerCase() === 'application/x-www-form-urlencoded')) {
      if (opts.encodeForm !== false) data = encodeFormData(data);
    }
  }
  if (headers.some(([k, v]) => k.toLowerCase() === 'content-type' && v.toLowerCase().includes('multipart/form-data;'))) {
    data = Buffer.from(data.toString('latin1').replace(/\n/g, '\r\n'), 'latin1');
  }
  if (auto) {
    if (!find('Connection')) headers.push(['Connection', 'close']);
    // go-ftw's method check is the regex ^POST|PUT|PATCH|DELETE$ (unanchored middle).
    if (!find('Content-Length') && (data.length > 0 || /^POST|PUT|PATCH|DELETE$/.test(method))) {
      headers.push(['Content-Length', String(data.length)]);
    }
  }
  const head = `${method} ${input.uri ?? '/'} ${input.version ?? 'HTTP/1.1'}\r\n` + headers.map(([k, v]) => `${k}: ${v}\r\n`).join('') + '\r\n';
  return Buffer.concat([Buffer.from(head, 'utf8'), data]);
}

/** One line saying what a stage sends: method, target, unusual headers and body, escaped and cut. */
export function summarizeStage(stage: FtwStage, max = 160): string {
  const cut = (s: string, n: number): string => (s.length > n ? s.slice(0, n) + '...' : s);
  const show = (s: string): string => JSON.stringify(s).slice(1, -1);
  const i = stage.input;
  if (i.encoded_request) {
    const raw = Buffer.from(i.encoded_request, 'base64').toString('latin1');
    return cut(`raw ${show(raw)}`, max);
  }
  // Hide only the boilerplate every CRS test carries; any other header may be the attack.
  const boilerplate = (k: string, v: string): boolean =>
    (/^host$/i.test(k) && v === 'localhost') ||
    (/^user-agent$/i.test(k) && /^OWASP (CRS test agent|ModSecurity Core Rule Set)/.test(v)) ||
    (/^accept$/i.test(k) && (v === '*/*' || v.startsWith('text/xml,application/xml,application/xhtml+xml,text/html;q=0.9')));
  const extra = Object.entries(i.headers ?? {})
    .filter(([k, v]) => !boilerplate(k, v))
    .map(([k, v]) => `${k}: ${show(cut(v, 60))}`);
  let s = `${i.method ?? 'GET'} ${show(cut(i.uri ?? '/', 80))}`;
  if (extra.length) s += ` [${extra.join('; ')}]`;
  if (i.data) s += ` body=${show(cut(expandDataTemplate(i.data), 80))}`;
  return cut(s, max);
}

// ---------------------------------------------------------------------------
// Transport

export interface Target {
  host: string;
  port: number;
}

/** What came back for one request. */
export interface Outcome {
  /**
   * response: a final status line arrived; closed: the server ended the
   * connection before one; reset: the connection was reset before one;
   * timeout: nothing final within the time limit; error: could not connect.
   */
  kind: 'response' | 'closed' | 'reset' | 'timeout' | 'error';
  status?: number;
  error?: string;
  ms: number;
}

/** The judgement: 403 (WAF), 400 (parser refusal), or the connection dropped with no response. */
export function isBlocked(o: Outcome): boolean {
  if (o.kind === 'response') return o.status === 403 || o.status === 400;
  return o.kind === 'closed' || o.kind === 'reset';
}

export interface SendOptions {
  /** Whole-exchange limit, from connect to the final status line. */
  timeoutMs?: number;
}

/**
 * Sends exact bytes on a fresh connection and waits for the final status
 * line (1xx interim responses other than 101 are skipped). The socket is not
 * half-closed after writing: a server waiting for a body that never comes
 * shows up as a timeout, not as a block.
 */
export function sendRaw(target: Target, bytes: Buffer, opts: SendOptions = {}): Promise<Outcome> {
  const timeoutMs = opts.timeoutMs ?? 5000;
  const started = performance.now();
  return new Promise((resolve) => {
    let done = false;
    let connected = false;
    let buf: Buffer = Buffer.alloc(0);
    const sock = net.connect({ host: target.host, port: target.port });
    const finish = (o: Omit<Outcome, 'ms'>): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      sock.destroy();
      resolve({ ...o, ms: Math.round(performance.now() - started) });
    };
    const timer = setTimeout(() => finish({ kind: 'timeout' }), timeoutMs);
    sock.setNoDelay(true);
    sock.on('connect', () => {
      connected = true;
      sock.write(bytes, () => {});
    });
    sock.on('data', (chunk: Buffer) => {
      if (done) return;
      buf = buf.length ? Buffer.concat([buf, chunk]) : chunk;
      for (;;) {
        const eol = buf.indexOf('\r\n');
        if (eol === -1) {
          // A status line never needs this much: the peer is not speaking HTTP.
          if (buf.length > 8192) finish({ kind: 'closed', error: 'no status line' });
          return;
        }
        const m = /^HTTP\/\d(?:\.\d)? (\d{3})/.exec(buf.subarray(0, eol).toString('latin1'));
        if (!m) return finish({ kind: 'closed', error: `not a status line: ${JSON.stringify(buf.subarray(0, Math.min(eol, 60)).toString('latin1'))}` });
        const status = Number(m[1]);
        if (status >= 200 || status === 101) return finish({ kind: 'response', status });
        const end = buf.indexOf('\r\n\r\n');
        if (end === -1) return;
        buf = buf.subarray(end + 4);
      }
    });
    sock.on('end', () => finish({ kind: 'closed' }));
    sock.on('close', () => finish({ kind: 'closed' }));
    sock.on('error', (err: NodeJS.ErrnoException) => {
      if (!connected) return finish({ kind: 'error', error: err.code ?? err.message });
      finish({ kind: 'reset', error: err.code ?? err.message });
    });
  });
}

/** Runs `work` over `items` with at most `concurrency` in flight; results keep the input order. */
export async function pool<T, R>(items: readonly T[], concurrency: number, work: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++;
      results[i] = await work(items[i]!, i);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(concurrency, items.length)) }, worker));
  return results;
}

// ---------------------------------------------------------------------------
// The run

export interface RunFtwOptions extends LoadOptions {
  host: string;
  port: number;
  /** Highest paranoia level whose rules' positive stages are expected to be blocked. Default 1. */
  maxParanoia?: number;
  /** Requests in flight at once. Default 8. */
  concurrency?: number;
  /** Per-request limit. Default 5000 ms. */
  timeoutMs?: number;
  /** go-ftw's form-data escaping (default true); false sends `data` byte for byte. */
  encodeForm?: boolean;
  /** Called after each stage (progress). */
  onResult?: (r: StageResult, doneCount: number, total: number) => void;
}

export interface StageResult {
  stage: FtwStage;
  outcome: Outcome;
  blocked: boolean;
}

export interface FamilyResult {
  family: string;
  /** Positive stages of rules at each level (all levels, whatever maxParanoia). */
  positiveByLevel: Record<string, number>;
  /** Positive stages of rules at level <= maxParanoia: the stages run. */
  positive: number;
  blocked: number;
  /** blocked / positive (0 when there is nothing to run). */
  share: number;
  timeouts: number;
  errors: number;
}

export interface MissedStage {
  title: string;
  ruleId: number;
  paranoia: number;
  file: string;
  stage: number;
  desc: string;
  input: string;
  outcome: string;
}

export interface FtwReport {
  target: string;
  maxParanoia: number;
  families: FamilyResult[];
  total: { positive: number; blocked: number; share: number; timeouts: number; errors: number };
  missed: MissedStage[];
  /** Positive stages whose rule id has no paranoia level in the rule files (not run). */
  unknownLevel: number;
  ms: number;
}

function describeOutcome(o: Outcome): string {
  if (o.kind === 'response') return `status ${o.status}`;
  return o.error ? `${o.kind} (${o.error})` : o.kind;
}

/** Loads the selected families, sends every positive stage at level <= maxParanoia, and counts blocks. */
export async function runFtw(opts: RunFtwOptions): Promise<FtwReport> {
  const maxParanoia = opts.maxParanoia ?? 1;
  const started = performance.now();
  const all = loadFtwStages(opts);
  const positives = all.filter((s) => s.positive);
  const selected = positives.filter((s) => s.paranoia !== undefined && s.paranoia <= maxParanoia);
  const target: Target = { host: opts.host, port: opts.port };
  let count = 0;
  const results = await pool(selected, opts.concurrency ?? 8, async (stage) => {
    const outcome = await sendRaw(target, buildFtwRequest(stage.input, { encodeForm: opts.encodeForm }), { timeoutMs: opts.timeoutMs ?? 5000 });
    const r: StageResult = { stage, outcome, blocked: isBlocked(outcome) };
    opts.onResult?.(r, ++count, selected.length);
    return r;
  });

  const fams = new Map<string, FamilyResult>();
  const fam = (f: string): FamilyResult => {
    let r = fams.get(f);
    if (!r) fams.set(f, (r = { family: f, positiveByLevel: {}, positive: 0, blocked: 0, share: 0, timeouts: 0, errors: 0 }));
    return r;
  };
  for (const f of opts.families ?? []) fam(f);
  for (const s of positives) {
    const key = s.paranoia === undefined ? '?' : String(s.paranoia);
    const r = fam(s.family);
    r.positiveByLevel[key] = (r.positiveByLevel[key] ?? 0) + 1;
  }
  const missed: MissedStage[] = [];
  for (const r of results) {
    const f = fam(r.stage.family);
    f.positive++;
    if (r.blocked) f.blocked++;
    else {
      if (r.outcome.kind === 'timeout') f.timeouts++;
      if (r.outcome.kind === 'error') f.errors++;
      missed.push({
        title: r.stage.title,
        ruleId: r.stage.ruleId,
        paranoia: r.stage.paranoia!,
        file: r.stage.file,
        stage: r.stage.stage,
        desc: r.stage.desc,
        input: summarizeStage(r.stage),
        outcome: describeOutcome(r.outcome),
      });
    }
  }
  const families = [...fams.values()].sort((a, b) => a.family.localeCompare(b.family));
  for (const f of families) f.share = f.positive ? f.blocked / f.positive : 0;
  const total = families.reduce(
    (t, f) => ({ positive: t.positive + f.positive, blocked: t.blocked + f.blocked, share: 0, timeouts: t.timeouts + f.timeouts, errors: t.errors + f.errors }),
    { positive: 0, blocked: 0, share: 0, timeouts: 0, errors: 0 },
  );
  total.share = total.positive ? total.blocked / total.positive : 0;
  return {
    target: `${opts.host}:${opts.port}`,
    maxParanoia,
    families,
    total,
    missed,
    unknownLevel: positives.filter((s) => s.paranoia === undefined).length,
    ms: Math.round(performance.now() - started),
  };
}

/** Stage counts per family and paranoia level, without sending anything. */
export function countStages(opts: LoadOptions = {}): { family: string; stages: number; positive: number; byLevel: Record<string, number> }[] {
  const rows = new Map<string, { family: string; stages: number; positive: number; byLevel: Record<string, number> }>();
  for (const s of loadFtwStages(opts)) {
    let r = rows.get(s.family);
    if (!r) rows.set(s.family, (r = { family: s.family, stages: 0, positive: 0, byLevel: {} }));
    r.stages++;
    if (!s.positive) continue;
    r.positive++;
    const k = s.paranoia === undefined ? '?' : String(s.paranoia);
    r.byLevel[k] = (r.byLevel[k] ?? 0) + 1;
  }
  return [...rows.values()].sort((a, b) => a.family.localeCompare(b.family));
}

export function pct(x: number): string {
  return `${(x * 100).toFixed(1)}%`;
}

/** Renders a report as a fixed-width table, then the missed stages. */
export function formatFtwReport(r: FtwReport, opts: { missedLimit?: number } = {}): string {
  const lines: string[] = [];
  const row = (cells: string[]): string => cells.map((c, i) => (i === 0 ? c.padEnd(8) : c.padStart(9))).join(' ');
  lines.push(`CRS regression stages against ${r.target}, rules at paranoia level <= ${r.maxParanoia}  (${(r.ms / 1000).toFixed(1)} s)`);
  lines.push(row(['family', 'PL1', 'PL2', 'PL3', 'PL4', 'run', 'blocked', 'share', 'timeout', 'error']));
  for (const f of r.families) {
    const l = (k: string): string => String(f.positiveByLevel[k] ?? 0);
    lines.push(row([f.family, l('1'), l('2'), l('3'), l('4'), String(f.positive), String(f.blocked), pct(f.share), String(f.timeouts), String(f.errors)]));
  }
  const sum = (k: string): string => String(r.families.reduce((n, f) => n + (f.positiveByLevel[k] ?? 0), 0));
  lines.push(row(['total', sum('1'), sum('2'), sum('3'), sum('4'), String(r.total.positive), String(r.total.blocked), pct(r.total.share), String(r.total.timeouts), String(r.total.errors)]));
  if (r.unknownLevel) lines.push(`${r.unknownLevel} positive stages name a rule with no paranoia level in the rule files (not run)`);
  const limit = opts.missedLimit ?? Infinity;
  if (r.missed.length) {
    lines.push('', `missed (${r.missed.length}):`);
    for (const m of r.missed.slice(0, limit)) lines.push(`  ${m.title}#${m.stage} PL${m.paranoia} -> ${m.outcome}: ${m.input}`);
    if (r.missed.length > limit) lines.push(`  ... ${r.missed.length - limit} more (--missed all)`);
  }
  return lines.join('\n');
}

// ---------------------------------------------------------------------------
// CLI

export function parseTarget(s: string): Target {
  const m = /^(.*):(\d+)$/.exec(s);
  if (!m) throw new Error(`--target wants host:port, got ${s}`);
  return { host: m[1]!.replace(/^\[|\]$/g, ''), port: Number(m[2]) };
}

/** `--name value` pairs and bare `--flag`s. */
export function parseArgs(argv: string[]): Map<string, string> {
  const out = new Map<string, string>();
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (!a.startsWith('--')) throw new Error(`unexpected argument ${a}`);
    const eq = a.indexOf('=');
    if (eq !== -1) out.set(a.slice(2, eq), a.slice(eq + 1));
    else if (i + 1 < argv.length && !argv[i + 1]!.startsWith('--')) out.set(a.slice(2), argv[++i]!);
    else out.set(a.slice(2), 'true');
  }
  return out;
}

const USAGE = `usage: npx tsx test/waf/ftw.ts --target HOST:PORT [--families 930,931,...] [--paranoia 1]
       [--concurrency 8] [--timeout-ms 5000] [--missed N|all] [--json FILE]
       [--tests-dir DIR] [--rules-dir DIR]   (default: vendor/crs/rules and test/fixtures/crs)
       [--raw-data]   send form data byte for byte instead of go-ftw's escaping
       npx tsx test/waf/ftw.ts --count [--families ...]   (stage counts only, sends nothing)`;

async function main(argv: string[]): Promise<number> {
  const args = parseArgs(argv);
  if (args.has('help')) {
    console.log(USAGE);
    return 0;
  }
  const families = args.get('families')?.split(',').map((s) => s.trim()).filter(Boolean);
  const dirs = { testsDir: args.get('tests-dir'), rulesDir: args.get('rules-dir') };
  if (args.has('count')) {
    const rows = countStages({ families, ...dirs });
    console.log(['family', 'stages', 'positive', 'PL1', 'PL2', 'PL3', 'PL4', '?'].map((c, i) => (i ? c.padStart(9) : c.padEnd(8))).join(' '));
    const tot = { stages: 0, positive: 0, byLevel: {} as Record<string, number> };
    for (const r of rows) {
      tot.stages += r.stages;
      tot.positive += r.positive;
      for (const [k, v] of Object.entries(r.byLevel)) tot.byLevel[k] = (tot.byLevel[k] ?? 0) + v;
    }
    for (const r of [...rows, { family: 'total', ...tot }]) {
      const l = (k: string): string => String(r.byLevel[k] ?? 0).padStart(9);
      console.log(`${r.family.padEnd(8)} ${String(r.stages).padStart(9)} ${String(r.positive).padStart(9)} ${l('1')} ${l('2')} ${l('3')} ${l('4')} ${l('?')}`);
    }
    return 0;
  }
  const target = args.get('target');
  if (!target) {
    console.error(USAGE);
    return 2;
  }
  const { host, port } = parseTarget(target);
  const report = await runFtw({
    host,
    port,
    families,
    ...dirs,
    maxParanoia: Number(args.get('paranoia') ?? 1),
    concurrency: Number(args.get('concurrency') ?? 8),
    timeoutMs: Number(args.get('timeout-ms') ?? 5000),
    encodeForm: !args.has('raw-data'),
    onResult: (_r, n, total) => {
      if (process.stderr.isTTY && (n % 50 === 0 || n === total)) process.stderr.write(`\r${n}/${total}`);
    },
  });
  if (process.stderr.isTTY) process.stderr.write('\n');
  const missed = args.get('missed');
  console.log(formatFtwReport(report, { missedLimit: missed === 'all' ? Infinity : Number(missed ?? 50) }));
  writeJsonReport(args, report);
  return 0;
}

/** `--json FILE`: the whole report as JSON. */
export function writeJsonReport(args: Map<string, string>, report: unknown): void {
  const json = args.get('json');
  if (json) writeFileSync(json, JSON.stringify(report, null, 2));
}

/** Runs `main` when the module at `url` is the script node was started with; exit 2 on an error. */
export function runAsScript(url: string, main: (argv: string[]) => Promise<number>): void {
  if (!process.argv[1] || url !== pathToFileURL(process.argv[1]).href) return;
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (err: unknown) => {
      console.error(err instanceof Error ? err.message : err);
      process.exit(2);
    },
  );
}

runAsScript(import.meta.url, main);
