// The console's config editor: read the file, check a draft, diff it, apply
// it, roll back.
//
// The file on disk stays the source of truth. Apply writes the draft to the
// file (atomically: a temporary file in the same folder, then a rename onto
// the file's real path) and reloads from the file through the same
// transaction a file change or SIGHUP runs. A draft is written only when the
// file still holds the text the draft was based on (`baseHash`); otherwise
// the answer is a conflict with the file's current text, so an edit made in
// the file meanwhile is never overwritten and the draft is never dropped
// silently. A draft the reload refuses (a port that cannot be bound, say) is
// undone: the file gets its previous text back, and the old config serves
// on. Rollback applies the generation before the one serving, the same way.
import { accessSync, constants as fsConstants, readFileSync, realpathSync, renameSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { createTwoFilesPatch } from 'diff';
import { isMap, isScalar, isSeq, parseDocument, visit } from 'yaml';
import { textHash } from '../config/load.js';
import { checkConfigText } from '../server/dry-compile.js';
import { SECRET_KEYS } from './views.js';

/** What the editor needs of the gateway (`Gateway` implements it). */
export interface EditTarget {
  readonly configPath: string | undefined;
  readonly servingHash: string | undefined;
  readonly history: ReadonlyArray<{ version: number; at: number; by: string; text: string | undefined; hash: string | undefined }>;
  readonly state: { readonly version: number };
  reload(next: undefined, opts: { by: string }): Promise<{ ok: boolean; version?: number; error?: string; problems?: string[] }>;
}

export type EditAnswer = { status: number; body: Record<string, unknown> };

/** The text with every secret key's value replaced by *** (a `${VAR}` reference is not a secret and stays). */
export function maskSecrets(text: string): string {
  const doc = parseDocument(text);
  if (doc.errors.length > 0) return '# The file does not parse as YAML, so its secrets cannot be told apart: its text is shown to the admin role only.\n';
  // A secret key's own scalar values are masked; inside a mapping under it (admin.auth's entries) only the secret keys are.
  const mask = (node: unknown): void => {
    if (isScalar(node)) {
      if (typeof node.value === 'string' && !/^\$\{[^}]*\}$/.test(node.value)) node.value = '***';
    } else if (isSeq(node)) for (const item of node.items) if (isScalar(item)) mask(item);
  };
  visit(doc, {
    Pair(_, pair) {
      if (isScalar(pair.key) && SECRET_KEYS.has(String(pair.key.value)) && !isMap(pair.value)) mask(pair.value);
    },
  });
  return doc.toString();
}

export class ConfigEditor {
  /** Applies and rollbacks run one at a time. */
  private queue: Promise<unknown> = Promise.resolve();

  constructor(private readonly gw: EditTarget) {}

  private read(): { text: string; hash: string } {
    const text = readFileSync(this.gw.configPath!, 'utf8');
    return { text, hash: textHash(text) };
  }

  /** Whether an atomic write can be made: the file's real folder must take a new file (a ConfigMap mount cannot). */
  private writable(): string | undefined {
    const path = this.gw.configPath;
    if (!path) return 'the gateway was started without a config file';
    try {
      const real = realpathSync(path);
      accessSync(real, fsConstants.W_OK);
      accessSync(dirname(real), fsConstants.W_OK);
      return undefined;
    } catch (e) {
      return `the config file cannot be written here (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}): change it where it is managed (for example its ConfigMap)`;
    }
  }

  source(canSeeSecrets: boolean): Record<string, unknown> {
    const path = this.gw.configPath ?? null;
    const history = this.gw.history.map(({ version, at, by, hash }) => ({ version, at: new Date(at).toISOString(), by, hash: hash ?? null }));
    const common = { path, runningVersion: this.gw.state.version, history, canRollback: this.previous() !== undefined };
    if (!path) return { ...common, text: '', hash: null, writable: false, fileMatchesRunning: false, notWritable: this.writable() };
    let file: { text: string; hash: string };
    try {
      file = this.read();
    } catch (e) {
      return { ...common, text: '', hash: null, writable: false, fileMatchesRunning: false, error: `cannot read ${path}: ${(e as Error).message}` };
    }
    const notWritable = this.writable();
    return {
      ...common,
      text: canSeeSecrets ? file.text : maskSecrets(file.text),
      masked: !canSeeSecrets,
      hash: file.hash,
      writable: notWritable === undefined,
      ...(notWritable ? { notWritable } : {}),
      fileMatchesRunning: file.hash === this.gw.servingHash,
    };
  }

  async validate(text: string): Promise<Record<string, unknown>> {
    const check = await checkConfigText(text, this.gw.configPath ?? '<draft>');
    if (!check.ok) return { ok: false, problems: check.problems, warnings: check.warnings };
    const c = check.config;
    return { ok: true, warnings: check.warnings, summary: `${c.routes.length} routes, ${c.registries.length} registries` };
  }

  diff(text: string): Record<string, unknown> {
    const path = this.gw.configPath ?? 'config';
    const base = this.gw.configPath ? this.read().text : '';
    return { changed: base !== text, diff: createTwoFilesPatch(path, path, base, text, 'on disk', 'draft', { context: 3 }) };
  }

  /** The generation before the one serving that came from the file and differs from it. */
  private previous(): { text: string; version: number } | undefined {
    const h = this.gw.history;
    const cur = h.at(-1)?.hash;
    for (let i = h.length - 2; i >= 0; i--) {
      const e = h[i]!;
      if (e.text !== undefined && e.hash !== cur) return { text: e.text, version: e.version };
    }
    return undefined;
  }

  apply(text: string, baseHash: string | undefined, who: string): Promise<EditAnswer> {
    return this.serial(() => this.write(text, baseHash, who));
  }

  rollback(baseHash: string | undefined, who: string): Promise<EditAnswer> {
    return this.serial(async () => {
      const prev = this.previous();
      if (!prev) return { status: 409, body: { ok: false, error: 'no earlier version of the file to roll back to' } };
      return this.write(prev.text, baseHash, `${who} (rollback to version ${prev.version})`);
    });
  }

  private serial(fn: () => Promise<EditAnswer>): Promise<EditAnswer> {
    const run = this.queue.then(fn, fn);
    this.queue = run.catch(() => undefined);
    return run;
  }

  private async write(text: string, baseHash: string | undefined, who: string): Promise<EditAnswer> {
    const notWritable = this.writable();
    if (notWritable) return { status: 503, body: { ok: false, error: notWritable } };
    if (typeof baseHash !== 'string') return { status: 400, body: { ok: false, error: 'baseHash: the hash of the file text the draft started from is required' } };
    const before = this.read();
    if (before.hash !== baseHash) return this.conflict(before);
    const check = await checkConfigText(text, this.gw.configPath!);
    if (!check.ok) return { status: 400, body: { ok: false, problems: check.problems, warnings: check.warnings } };
    // Checking took a moment: the file may have changed meanwhile.
    const now = this.read();
    if (now.hash !== baseHash) return this.conflict(now);
    atomicWrite(this.gw.configPath!, text);
    const r = await this.gw.reload(undefined, { by: who });
    if (!r.ok) {
      // The reload transaction refused it (for example an address that cannot be bound): the old config serves; give the file its text back.
      atomicWrite(this.gw.configPath!, before.text);
      return { status: 400, body: { ok: false, problems: r.problems ?? [r.error ?? 'refused'], restored: true } };
    }
    return { status: 200, body: { ok: true, version: r.version, hash: textHash(text) } };
  }

  private conflict(current: { text: string; hash: string }): EditAnswer {
    return {
      status: 409,
      body: { ok: false, error: 'the config file changed on disk since this draft was started; nothing was written', current },
    };
  }
}

/** Write a file's new text so a reader sees the old text or the new, never a part: a temporary file beside the real one, then a rename. */
function atomicWrite(path: string, text: string): void {
  const real = realpathSync(path);
  const tmp = join(dirname(real), `.${basename(real)}.${process.pid}.${Date.now()}.tmp`);
  const mode = statSync(real).mode & 0o777;
  try {
    writeFileSync(tmp, text, { mode });
    renameSync(tmp, real);
  } catch (e) {
    try {
      unlinkSync(tmp);
    } catch {
      // nothing was left behind
    }
    throw e;
  }
}
