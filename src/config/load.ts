// Load a config file: YAML -> ${ENV} interpolation -> schema validation -> semantic checks.
import { createHash } from 'node:crypto';
import { accessSync, constants as fsConstants, readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import type { z } from 'zod';
import { registryConfigProblems } from '../discovery/registries.js';
import { parseHostPort } from '../discovery/types.js';
import { ensureLinearRegexEngine } from './linear-regex.js';
import { ConfigSchema, type Config } from './schema.js';

// Before any config regex is compiled (they are matched against client data).
ensureLinearRegexEngine();

export class ConfigError extends Error {
  readonly problems: string[];
  constructor(source: string, problems: string[]) {
    super(`invalid config ${source}:\n  ${problems.join('\n  ')}`);
    this.name = 'ConfigError';
    this.problems = problems;
  }
}

/** `routes[2].backends[0].weight` from ['routes', 2, 'backends', 0, 'weight'] */
export function formatPath(path: ReadonlyArray<PropertyKey>): string {
  let out = '';
  for (const p of path) {
    if (typeof p === 'number') out += `[${p}]`;
    else {
      const s = String(p);
      out += /^[A-Za-z_$][\w$-]*$/.test(s) ? (out ? `.${s}` : s) : `[${JSON.stringify(s)}]`;
    }
  }
  return out || '(root)';
}

function describeIssue(issue: z.core.$ZodIssue): string {
  switch (issue.code) {
    case 'too_small': {
      const i = issue as z.core.$ZodIssueTooSmall;
      if (i.origin === 'number' || i.origin === 'int') return `must be ${i.inclusive ? '>=' : '>'} ${String(i.minimum)}`;
      if (i.origin === 'array') return `must have at least ${String(i.minimum)} item(s)`;
      if (i.origin === 'string') return Number(i.minimum) === 1 ? 'must not be empty' : `must be at least ${String(i.minimum)} characters`;
      return issue.message;
    }
    case 'too_big': {
      const i = issue as z.core.$ZodIssueTooBig;
      if (i.origin === 'number' || i.origin === 'int') return `must be ${i.inclusive ? '<=' : '<'} ${String(i.maximum)}`;
      return issue.message;
    }
    case 'unrecognized_keys':
      return `unknown key(s): ${(issue as z.core.$ZodIssueUnrecognizedKeys).keys.join(', ')}`;
    case 'invalid_type':
      return issue.message.replace(/^Invalid input: /, '');
    case 'invalid_value':
      return `must be one of ${(issue as z.core.$ZodIssueInvalidValue).values.map((v) => JSON.stringify(v)).join(', ')}`;
    case 'invalid_union': {
      const u = issue as z.core.$ZodIssueInvalidUnion;
      if ((u as { note?: string }).note === 'No matching discriminator' || u.errors.length === 0) return issue.message;
      // Pick the branch that got furthest: the one with fewest problems.
      const best = [...u.errors].sort((a, b) => a.length - b.length)[0];
      if (best && best.length === 1) {
        const inner = best[0]!;
        const sub = formatPath(inner.path);
        return `${inner.path.length ? sub + ': ' : ''}${describeIssue(inner)}`;
      }
      return issue.message;
    }
    default:
      return issue.message;
  }
}

export function zodProblems(error: z.ZodError): string[] {
  return error.issues.map((issue) => {
    const msg = describeIssue(issue);
    // invalid_union may already prefix a sub path
    if (issue.code === 'invalid_union' && /^[\w[\]."$-]+: /.test(msg) && !msg.startsWith('must')) {
      return `${formatPath(issue.path)}.${msg}`.replace('.[', '[');
    }
    return `${formatPath(issue.path)}: ${msg}`;
  });
}

const ENV_RE = /\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g;

/** Replace ${VAR} and ${VAR:-default} in every string value; unset without default is a problem. */
export function interpolateEnv(value: unknown, env: NodeJS.ProcessEnv, problems: string[], path: PropertyKey[] = []): unknown {
  if (typeof value === 'string') {
    return value.replace(ENV_RE, (_m, name: string, def: string | undefined) => {
      const v = env[name];
      if (v !== undefined) return v;
      if (def !== undefined) return def;
      problems.push(`${formatPath(path)}: environment variable ${name} is not set`);
      return '';
    });
  }
  if (Array.isArray(value)) return value.map((v, i) => interpolateEnv(v, env, problems, [...path, i]));
  if (value && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = interpolateEnv(v, env, problems, [...path, k]);
    return out;
  }
  return value;
}

function checkRegex(source: string, path: string, problems: string[]): void {
  try {
    new RegExp(source);
  } catch (e) {
    problems.push(`${path}: invalid regular expression: ${(e as Error).message}`);
  }
}

/** Checks that need the whole config (names unique, regexes compile, references resolve). */
export function semanticProblems(cfg: Config): string[] {
  const problems: string[] = [];
  const seen = (what: string, names: string[]) => {
    const s = new Set<string>();
    names.forEach((n, i) => {
      if (s.has(n)) problems.push(`${what}[${i}].name: duplicate name "${n}"`);
      s.add(n);
    });
  };
  seen('listeners', cfg.listeners.map((l) => l.name));
  seen('registries', cfg.registries.map((r) => r.name));
  seen('routes', cfg.routes.map((r) => r.name));
  const addrs = new Set<string>();
  // Addresses that parse, by key, to find two that would bind the same port.
  const binds: Array<{ key: string; host: string; port: number }> = [];
  const bindAt = (key: string, address: string): void => {
    try {
      const hp = parseHostPort(address);
      binds.push({ key, host: hp.host, port: hp.port });
    } catch (e) {
      problems.push(`${key}: ${(e as Error).message}`);
    }
  };
  cfg.listeners.forEach((l, i) => {
    if (addrs.has(l.address)) problems.push(`listeners[${i}].address: ${l.address} is used by another listener`);
    addrs.add(l.address);
    bindAt(`listeners[${i}].address`, l.address);
    if (l.protocol === 'https' && !l.tls) problems.push(`listeners[${i}].tls: required when protocol is https`);
  });
  bindAt('admin.address', cfg.admin.address);
  const wildcard = (h: string): boolean => h === '0.0.0.0' || h === '::' || h === '';
  const admin = binds.find((b) => b.key === 'admin.address');
  if (admin && admin.port !== 0) {
    const clash = binds.find((b) => b !== admin && b.port === admin.port && (b.host === admin.host || wildcard(b.host) || wildcard(admin.host)));
    if (clash) problems.push(`admin.address: ${cfg.admin.address} takes the port of ${clash.key} (${clash.host}:${clash.port})`);
  }
  cfg.registries.forEach((r, i) => {
    for (const p of registryConfigProblems(r)) problems.push(`${formatPath(['registries', i, ...p.path])}: ${p.message}`);
  });
  cfg.routes.forEach((r, i) => {
    const p = `routes[${i}]`;
    if ('regex' in r.match.path) checkRegex(r.match.path.regex, `${p}.match.path.regex`, problems);
    for (const [where, rec] of [['headers', r.match.headers], ['query', r.match.query]] as const) {
      for (const [k, m] of Object.entries(rec ?? {})) if ('regex' in m) checkRegex(m.regex, `${p}.match.${where}.${k}.regex`, problems);
    }
    if (r.backends.length === 0 && !r.dubbo && !r.ai && !r.directResponse) {
      problems.push(`${p}.backends: a route needs at least one backend (or dubbo, ai, directResponse)`);
    }
    if (r.backends.length > 0 && r.backends.every((b) => b.weight === 0)) {
      problems.push(`${p}.backends: at least one backend needs a weight > 0`);
    }
    if (r.canary) {
      const c = r.canary;
      if (c.byHeaderPattern !== undefined) checkRegex(c.byHeaderPattern, `${p}.canary.byHeaderPattern`, problems);
      if ((c.byHeaderValue !== undefined || c.byHeaderPattern !== undefined) && !c.byHeader) {
        problems.push(`${p}.canary.byHeader: required with byHeaderValue or byHeaderPattern`);
      }
      if (c.weight !== undefined && c.weight > Math.max(c.weightTotal, 100)) {
        problems.push(`${p}.canary.weight: must be <= weightTotal (${Math.max(c.weightTotal, 100)})`);
      }
    }
  });
  for (const [name, svc] of Object.entries(cfg.services)) {
    const tls = svc.tls;
    if (tls !== undefined && (tls.cert === undefined) !== (tls.key === undefined)) {
      problems.push(`${formatPath(['services', name, 'tls', tls.cert === undefined ? 'cert' : 'key'])}: required with ${tls.cert === undefined ? 'key' : 'cert'} (a client certificate needs its key)`);
    }
    svc.circuitBreakers.forEach((cb, j) => {
      const p = `services[${JSON.stringify(name)}].circuitBreakers[${j}]`;
      if (cb.strategy === 'slow_ratio' && cb.maxRtMs === undefined) problems.push(`${p}.maxRtMs: required for slow_ratio`);
      if (cb.strategy !== 'error_count' && cb.threshold > 1) problems.push(`${p}.threshold: must be <= 1 for ${cb.strategy}`);
    });
  }
  return problems;
}

/**
 * What a config needs of this machine's files (TLS certificates and keys):
 * checked by `meshgate validate`, and by starting listeners (a reload that
 * cannot read them is refused there). Kept apart from validateConfig, which
 * judges the document alone.
 */
export function fileProblems(cfg: Config): string[] {
  const problems: string[] = [];
  const readable = (key: string, file: string | undefined): void => {
    if (file === undefined) return;
    try {
      accessSync(file, fsConstants.R_OK);
    } catch (e) {
      problems.push(`${key}: cannot read ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
    }
  };
  cfg.listeners.forEach((l, i) => {
    l.tls?.certificates.forEach((c, j) => {
      for (const k of ['cert', 'key'] as const) readable(`listeners[${i}].tls.certificates[${j}].${k}`, c[k]);
    });
  });
  for (const [name, s] of Object.entries(cfg.services)) {
    for (const k of ['ca', 'cert', 'key'] as const) readable(formatPath(['services', name, 'tls', k]), s.tls?.[k]);
  }
  return problems;
}

/** Validate an already-parsed document. Throws ConfigError naming every bad key. */
export function validateConfig(doc: unknown, source = '<inline>', env: NodeJS.ProcessEnv = process.env): Config {
  const problems: string[] = [];
  const interpolated = interpolateEnv(doc ?? {}, env, problems);
  if (problems.length) throw new ConfigError(source, problems);
  const res = ConfigSchema.safeParse(interpolated);
  if (!res.success) throw new ConfigError(source, zodProblems(res.error));
  const semantic = semanticProblems(res.data);
  if (semantic.length) throw new ConfigError(source, semantic);
  return res.data;
}

export function parseConfigText(text: string, source = '<inline>', env: NodeJS.ProcessEnv = process.env): Config {
  let doc: unknown;
  try {
    doc = parseYaml(text, { prettyErrors: true });
  } catch (e) {
    throw new ConfigError(source, [`YAML: ${(e as Error).message.split('\n')[0]}`]);
  }
  // An empty file would start on the defaults with no routes: almost always a mistake (a truncated write, the wrong path).
  if (doc === null || doc === undefined) throw new ConfigError(source, ['the file is empty (write `routes: []` for a config without routes)']);
  if (typeof doc !== 'object' || Array.isArray(doc)) throw new ConfigError(source, ['the top level must be a mapping of keys (listeners, routes, ...)']);
  return validateConfig(doc, source, env);
}

/** sha256 of a config text: what the history, the file watch and the console's conflict check compare. */
export const textHash = (text: string): string => createHash('sha256').update(text).digest('hex');

/** A config file's text; a file that cannot be read is a ConfigError naming it. */
export function readConfigFile(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (e) {
    throw new ConfigError(file, [`cannot read file: ${(e as Error).message}`]);
  }
}

export function loadConfigFile(file: string, env: NodeJS.ProcessEnv = process.env): Config {
  return parseConfigText(readConfigFile(file), file, env);
}
