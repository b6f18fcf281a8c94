// Replays attack lists and benign traffic against any host:port over raw TCP:
// the share of attacks blocked (detection) and the share of benign requests
// blocked (false positives), with the blocked benign items listed.
//
// Attack lists: libinjection's sqli-*.txt and xss-*.txt. Their lines are
// URL-encoded user input (libinjection's data/README), so each line is
// URL-decoded once into the bytes a user typed, then sent twice, freshly
// percent-encoded: as a query value (`GET /search?q=...`) and as a form body
// (`POST /form`, `q=...`). libinjection's false_positives.txt is benign input
// in the same shape and is sent the same two ways.
//
// Benign corpus: test/waf/benign/*.jsonl, one request per line:
// { id, group, method, path, headers, body?, encoding? } where body is text
// sent as UTF-8, or base64 of raw bytes when encoding is "base64". The rig
// adds Host (localhost) when absent, Content-Length for a body (and for POST,
// PUT, PATCH without one) and `Connection: close`.
//
// Judgement (shared with ftw.ts): blocked = 403, 400, or the connection closed
// or reset with no response. Timeouts and connect errors are reported apart.
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { decodeCorpusLine, LIBINJECTION_DIR } from '../helpers/waf-data.js';
import { isBlocked, parseArgs, parseTarget, pct, pool, runAsScript, sendRaw, writeJsonReport, type Outcome, type Target } from './ftw.js';

export { LIBINJECTION_DIR };
export const BENIGN_DIR = join(dirname(fileURLToPath(import.meta.url)), 'benign');

/** A plain desktop browser: nothing for the scanner or protocol rules to flag. */
export const BROWSER_UA = 'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36';

export type Mode = 'query' | 'form';
export const MODES: readonly Mode[] = ['query', 'form'];

// ---------------------------------------------------------------------------
// Values

/** A libinjection corpus line decoded once ('+' a space, %XX a byte): the lines are URL-encoded user input. */
export const urlDecodeLine = decodeCorpusLine;

/** Percent-encodes a byte string for a query or form value: only A-Z a-z 0-9 - . _ ~ stay. */
export function percentEncode(bytes: string): string {
  let out = '';
  for (let i = 0; i < bytes.length; i++) {
    const c = bytes.charCodeAt(i);
    if (/[A-Za-z0-9\-._~]/.test(bytes[i]!)) out += bytes[i];
    else out += '%' + (c & 0xff).toString(16).toUpperCase().padStart(2, '0');
  }
  return out;
}

/** Data lines of a libinjection file: blank lines and `#` comments skipped, CR stripped. Bytes kept (latin1). */
export function readDataLines(file: string): string[] {
  return readFileSync(file, 'latin1')
    .split('\n')
    .map((l) => l.replace(/\r$/, ''))
    .filter((l) => l.trim() !== '' && !l.startsWith('#'));
}

export interface AttackList {
  /** File name without .txt: sqli-misc, xss-smoke-test, ... */
  name: string;
  kind: 'sqli' | 'xss';
  /** Decoded user input, byte strings. */
  values: string[];
}

export function loadAttackLists(dir: string = LIBINJECTION_DIR, only?: string[]): AttackList[] {
  return readdirSync(dir)
    .filter((f) => /^(sqli|xss)-.*\.txt$/.test(f))
    .sort()
    .map((f) => ({ name: f.slice(0, -4), kind: f.startsWith('sqli') ? ('sqli' as const) : ('xss' as const), values: readDataLines(join(dir, f)).map(urlDecodeLine) }))
    .filter((l) => !only || only.some((o) => l.name.includes(o)));
}

export function loadFalsePositives(dir: string = LIBINJECTION_DIR): string[] {
  return readDataLines(join(dir, 'false_positives.txt')).map(urlDecodeLine);
}

/** The request carrying one value: a query parameter or a urlencoded form field named q. */
export function buildValueRequest(value: string, mode: Mode, host = 'localhost'): Buffer {
  const enc = percentEncode(value);
  const common = `Host: ${host}\r\nUser-Agent: ${BROWSER_UA}\r\nAccept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8\r\nAccept-Language: en-US,en;q=0.5\r\nConnection: close\r\n`;
  if (mode === 'query') return Buffer.from(`GET /search?q=${enc} HTTP/1.1\r\n${common}\r\n`, 'latin1');
  const body = `q=${enc}`;
  return Buffer.from(`POST /form HTTP/1.1\r\n${common}Content-Type: application/x-www-form-urlencoded\r\nContent-Length: ${body.length}\r\n\r\n${body}`, 'latin1');
}

// ---------------------------------------------------------------------------
// Benign corpus

export interface BenignItem {
  id: string;
  group: string;
  method: string;
  /** Origin-form target, query already percent-encoded. */
  path: string;
  headers: Record<string, string>;
  body?: string;
  /** How body is stored: UTF-8 text (default) or base64 of raw bytes. */
  encoding?: 'utf8' | 'base64';
  /** Free text: what the item is (language, snippet kind, ...). */
  note?: string;
}

/** Every *.jsonl file in dir, in name order; each line one item. */
export function loadBenign(dir: string = BENIGN_DIR): BenignItem[] {
  const out: BenignItem[] = [];
  for (const f of readdirSync(dir).filter((x) => x.endsWith('.jsonl')).sort()) {
    readFileSync(join(dir, f), 'utf8')
      .split('\n')
      .forEach((line, n) => {
        if (!line.trim()) return;
        const item = JSON.parse(line) as BenignItem;
        if (!item.id || !item.group || !item.method || !item.path) throw new Error(`${f}:${n + 1}: id, group, method and path are required`);
        out.push(item);
      });
  }
  return out;
}

export function benignBody(item: BenignItem): Buffer {
  if (item.body === undefined) return Buffer.alloc(0);
  return Buffer.from(item.body, item.encoding === 'base64' ? 'base64' : 'utf8');
}

export function buildBenignRequest(item: BenignItem, host = 'localhost'): Buffer {
  const body = benignBody(item);
  const headers = Object.entries(item.headers ?? {});
  const has = (n: string): boolean => headers.some(([k]) => k.toLowerCase() === n);
  if (!has('host')) headers.unshift(['Host', host]);
  if (!has('content-length') && (body.length > 0 || /^(POST|PUT|PATCH)$/.test(item.method))) headers.push(['Content-Length', String(body.length)]);
  if (!has('connection')) headers.push(['Connection', 'close']);
  const head = `${item.method} ${item.path} HTTP/1.1\r\n${headers.map(([k, v]) => `${k}: ${v}\r\n`).join('')}\r\n`;
  return Buffer.concat([Buffer.from(head, 'utf8'), body]);
}

/** One short line for a benign item, for the list of blocked ones. */
export function summarizeBenign(item: BenignItem, max = 140): string {
  const body = item.encoding === 'base64' ? `<${benignBody(item).length} bytes>` : (item.body ?? '');
  const s = `${item.method} ${item.path}${body ? ' ' + JSON.stringify(body).slice(1, -1) : ''}`;
  return s.length > max ? s.slice(0, max) + '...' : s;
}

// ---------------------------------------------------------------------------
// The run

export interface Tally {
  total: number;
  blocked: number;
  share: number;
  timeouts: number;
  errors: number;
}

export interface BlockedItem {
  id: string;
  summary: string;
  outcome: string;
}

export interface CorpusReport {
  target: string;
  /** Per attack list and mode. */
  attacks: { list: string; kind: 'sqli' | 'xss'; mode: Mode; tally: Tally }[];
  /** libinjection false_positives.txt, per mode, with what was blocked. */
  falsePositives: { mode: Mode; tally: Tally; blocked: BlockedItem[] }[];
  /** Benign corpus per group (the code-in-body group is one of them, reported on its own line). */
  benign: { group: string; tally: Tally; blocked: BlockedItem[] }[];
  ms: number;
}

export interface RunCorpusOptions {
  host: string;
  port: number;
  concurrency?: number;
  timeoutMs?: number;
  libinjectionDir?: string;
  benignDir?: string;
  /** Only attack lists whose name contains one of these. */
  lists?: string[];
  attacks?: boolean;
  benign?: boolean;
  onProgress?: (done: number, total: number) => void;
}

function tally(outcomes: Outcome[]): Tally {
  const t: Tally = { total: outcomes.length, blocked: 0, share: 0, timeouts: 0, errors: 0 };
  for (const o of outcomes) {
    if (isBlocked(o)) t.blocked++;
    else if (o.kind === 'timeout') t.timeouts++;
    else if (o.kind === 'error') t.errors++;
  }
  t.share = t.total ? t.blocked / t.total : 0;
  return t;
}

function describe(o: Outcome): string {
  return o.kind === 'response' ? `status ${o.status}` : o.error ? `${o.kind} (${o.error})` : o.kind;
}

interface Job {
  bytes: Buffer;
  key: string;
  id: string;
  summary: string;
}

export async function runCorpus(opts: RunCorpusOptions): Promise<CorpusReport> {
  const started = performance.now();
  const target: Target = { host: opts.host, port: opts.port };
  const jobs: Job[] = [];
  const attackKeys: { list: string; kind: 'sqli' | 'xss'; mode: Mode; key: string }[] = [];
  if (opts.attacks !== false) {
    for (const l of loadAttackLists(opts.libinjectionDir, opts.lists)) {
      for (const mode of MODES) {
        const key = `attack:${l.name}:${mode}`;
        attackKeys.push({ list: l.name, kind: l.kind, mode, key });
        l.values.forEach((v, i) => jobs.push({ bytes: buildValueRequest(v, mode), key, id: `${l.name}:${i + 1}`, summary: JSON.stringify(v).slice(1, -1) }));
      }
    }
  }
  const benignGroups: string[] = [];
  if (opts.benign !== false) {
    const fp = loadFalsePositives(opts.libinjectionDir);
    for (const mode of MODES) {
      fp.forEach((v, i) => jobs.push({ bytes: buildValueRequest(v, mode), key: `fp:${mode}`, id: `false_positives:${i + 1}`, summary: JSON.stringify(v).slice(1, -1) }));
    }
    for (const item of loadBenign(opts.benignDir)) {
      if (!benignGroups.includes(item.group)) benignGroups.push(item.group);
      jobs.push({ bytes: buildBenignRequest(item), key: `benign:${item.group}`, id: item.id, summary: summarizeBenign(item) });
    }
  }
  let done = 0;
  const outcomes = await pool(jobs, opts.concurrency ?? 8, async (j) => {
    const o = await sendRaw(target, j.bytes, { timeoutMs: opts.timeoutMs ?? 5000 });
    opts.onProgress?.(++done, jobs.length);
    return o;
  });
  const byKey = new Map<string, { job: Job; outcome: Outcome }[]>();
  jobs.forEach((job, i) => {
    const list = byKey.get(job.key) ?? [];
    list.push({ job, outcome: outcomes[i]! });
    byKey.set(job.key, list);
  });
  const blockedOf = (key: string): BlockedItem[] =>
    (byKey.get(key) ?? []).filter((r) => isBlocked(r.outcome)).map((r) => ({ id: r.job.id, summary: r.job.summary, outcome: describe(r.outcome) }));
  const tallyOf = (key: string): Tally => tally((byKey.get(key) ?? []).map((r) => r.outcome));
  return {
    target: `${opts.host}:${opts.port}`,
    attacks: attackKeys.map((a) => ({ list: a.list, kind: a.kind, mode: a.mode, tally: tallyOf(a.key) })),
    falsePositives: opts.benign === false ? [] : MODES.map((mode) => ({ mode, tally: tallyOf(`fp:${mode}`), blocked: blockedOf(`fp:${mode}`) })),
    benign: benignGroups.map((g) => ({ group: g, tally: tallyOf(`benign:${g}`), blocked: blockedOf(`benign:${g}`) })),
    ms: Math.round(performance.now() - started),
  };
}

/** The group whose figure is kept apart: code pasted in bodies, which CRS may flag by design. */
export const CODE_GROUP = 'code-in-body';

function sumTallies(ts: Tally[]): Tally {
  const t = ts.reduce((a, b) => ({ total: a.total + b.total, blocked: a.blocked + b.blocked, share: 0, timeouts: a.timeouts + b.timeouts, errors: a.errors + b.errors }), {
    total: 0,
    blocked: 0,
    share: 0,
    timeouts: 0,
    errors: 0,
  });
  t.share = t.total ? t.blocked / t.total : 0;
  return t;
}

export function formatCorpusReport(r: CorpusReport, opts: { blockedLimit?: number } = {}): string {
  const lines: string[] = [];
  const limit = opts.blockedLimit ?? Infinity;
  const row = (name: string, t: Tally, w = 40): string =>
    `${name.padEnd(w)} ${String(t.total).padStart(6)} ${String(t.blocked).padStart(8)} ${pct(t.share).padStart(7)} ${String(t.timeouts).padStart(8)} ${String(t.errors).padStart(6)}`;
  const header = (name: string, w = 40): string => `${name.padEnd(w)} ${'sent'.padStart(6)} ${'blocked'.padStart(8)} ${'share'.padStart(7)} ${'timeout'.padStart(8)} ${'error'.padStart(6)}`;
  lines.push(`Corpus replay against ${r.target}  (${(r.ms / 1000).toFixed(1)} s)`);
  if (r.attacks.length) {
    lines.push('', 'Attacks (detection: higher is better)', header('list / mode'));
    for (const a of r.attacks) lines.push(row(`${a.list} / ${a.mode}`, a.tally));
    for (const kind of ['sqli', 'xss'] as const) {
      for (const mode of MODES) {
        const ts = r.attacks.filter((a) => a.kind === kind && a.mode === mode).map((a) => a.tally);
        if (ts.length) lines.push(row(`all ${kind} / ${mode}`, sumTallies(ts)));
      }
    }
  }
  if (r.falsePositives.length || r.benign.length) {
    lines.push('', 'Benign (false positives: lower is better)', header('corpus / group'));
    for (const f of r.falsePositives) lines.push(row(`libinjection false_positives / ${f.mode}`, f.tally));
    const plain = r.benign.filter((b) => b.group !== CODE_GROUP);
    for (const b of plain) lines.push(row(`benign ${b.group}`, b.tally));
    if (plain.length) lines.push(row('benign, all but code-in-body', sumTallies(plain.map((b) => b.tally))));
    for (const b of r.benign.filter((x) => x.group === CODE_GROUP)) lines.push(row(`benign ${b.group} (apart)`, b.tally));
    const blocked = [
      ...r.falsePositives.flatMap((f) => f.blocked.map((x) => ({ ...x, where: `false_positives/${f.mode}` }))),
      ...r.benign.flatMap((b) => b.blocked.map((x) => ({ ...x, where: b.group }))),
    ];
    if (blocked.length) {
      lines.push('', `Blocked benign items (${blocked.length}):`);
      for (const x of blocked.slice(0, limit)) lines.push(`  [${x.where}] ${x.id} -> ${x.outcome}: ${x.summary}`);
      if (blocked.length > limit) lines.push(`  ... ${blocked.length - limit} more (--blocked all)`);
    }
  }
  return lines.join('\n');
}

// ---------------------------------------------------------------------------
// CLI

const USAGE = `usage: npx tsx test/waf/corpus.ts --target HOST:PORT [--concurrency 8] [--timeout-ms 5000]
       [--only attacks|benign] [--lists sqli-misc,xss-smoke] [--blocked N|all] [--json FILE]
       [--libinjection-dir DIR] [--benign-dir DIR]`;

async function main(argv: string[]): Promise<number> {
  const args = parseArgs(argv);
  const target = args.get('target');
  if (args.has('help') || !target) {
    console.log(USAGE);
    return target ? 0 : 2;
  }
  const { host, port } = parseTarget(target);
  const only = args.get('only');
  const report = await runCorpus({
    host,
    port,
    concurrency: Number(args.get('concurrency') ?? 8),
    timeoutMs: Number(args.get('timeout-ms') ?? 5000),
    lists: args.get('lists')?.split(','),
    libinjectionDir: args.get('libinjection-dir'),
    benignDir: args.get('benign-dir'),
    attacks: only !== 'benign',
    benign: only !== 'attacks',
    onProgress: (n, total) => {
      if (process.stderr.isTTY && (n % 100 === 0 || n === total)) process.stderr.write(`\r${n}/${total}`);
    },
  });
  if (process.stderr.isTTY) process.stderr.write('\n');
  const blocked = args.get('blocked');
  console.log(formatCorpusReport(report, { blockedLimit: blocked === 'all' ? Infinity : Number(blocked ?? 100) }));
  writeJsonReport(args, report);
  return 0;
}

runAsScript(import.meta.url, main);
