// Higress http2rpc method mappings: which Dubbo method an HTTP request calls,
// and with which arguments (from query, headers, path variables or the JSON body).
import type { z } from 'zod';
import type { DubboMethodSchema } from '../../config/schema.js';
import { compileParamType, ParamError, type CompiledParamType } from './params.js';

type DubboMethodConfig = z.output<typeof DubboMethodSchema>;

type Segment = string | { name: string };

interface CompiledParam {
  readonly key: string;
  /** Lower-cased for headers. */
  readonly lookup: string;
  readonly source: 'QUERY' | 'HEADER' | 'PATH' | 'BODY';
  readonly type: CompiledParamType;
}

export interface CompiledMethod {
  readonly serviceMethod: string;
  readonly httpPath: string;
  readonly segments: readonly Segment[];
  /** Literal segments (more literal paths win over templates). */
  readonly literals: number;
  readonly methods: ReadonlySet<string> | undefined;
  readonly params: readonly CompiledParam[];
  readonly entireBody: CompiledParamType | undefined;
  readonly needsBody: boolean;
  /** The body may be plain text (the only body parameter is a String taking the entire body). */
  readonly bodyMayBeText: boolean;
  /** Java parameter types, in argument order. */
  readonly types: readonly string[];
  /** Headers to pass as attachments: none, all, or these (lower-case). */
  readonly attach: 'none' | 'all' | readonly string[];
}

export interface ResolvedCall {
  method: CompiledMethod;
  pathVars: Record<string, string> | undefined;
}

const VAR_RE = /^\{([A-Za-z_][\w.-]*)\}$/;

function splitPath(p: string): string[] {
  // "/a/b/" and "/a/b" are the same path; empty segments inside are kept.
  const trimmed = p.length > 1 && p.endsWith('/') ? p.slice(0, -1) : p;
  return trimmed.split('/').slice(1);
}

/** Throws with a message naming the bad key (relative to the method). */
export function compileMethod(m: DubboMethodConfig): CompiledMethod {
  const segments: Segment[] = splitPath(m.httpPath).map((s) => {
    const v = VAR_RE.exec(s);
    if (v) return { name: v[1]! };
    if (s.includes('{') || s.includes('}')) throw new Error(`httpPath: "${s}" must be a whole segment like {id}`);
    return s;
  });
  const vars = new Set(segments.filter((s): s is { name: string } => typeof s !== 'string').map((s) => s.name));
  const params = m.params.map((p, i): CompiledParam => {
    if (p.paramSource === 'PATH' && !vars.has(p.paramKey)) {
      throw new Error(`params[${i}].paramKey: httpPath ${m.httpPath} has no {${p.paramKey}}`);
    }
    let type: CompiledParamType;
    try {
      type = compileParamType(p.paramType);
    } catch (e) {
      throw new Error(`params[${i}].paramType: ${(e as Error).message}`);
    }
    return { key: p.paramKey, lookup: p.paramSource === 'HEADER' ? p.paramKey.toLowerCase() : p.paramKey, source: p.paramSource, type };
  });
  const entireBody = m.paramFromEntireBody ? compileParamType(m.paramFromEntireBody.paramType) : undefined;
  const ha = m.headersAttach.trim();
  const attach = ha === '' ? 'none' : ha === '*' ? 'all' : ha.split(',').map((h) => h.trim().toLowerCase()).filter(Boolean);
  return {
    serviceMethod: m.serviceMethod,
    httpPath: m.httpPath,
    segments,
    literals: segments.filter((s) => typeof s === 'string').length,
    methods: m.httpMethods.length ? new Set(m.httpMethods) : undefined,
    params,
    entireBody,
    needsBody: entireBody !== undefined || params.some((p) => p.source === 'BODY'),
    bodyMayBeText: entireBody?.javaType === 'java.lang.String' && !params.some((p) => p.source === 'BODY'),
    types: [...params.map((p) => p.type.javaType), ...(entireBody ? [entireBody.javaType] : [])],
    attach,
  };
}

/** Most specific first: more literal segments, then config order. */
export function orderMethods(list: CompiledMethod[]): CompiledMethod[] {
  return list.map((m, i) => [m, i] as const).sort((a, b) => b[0].literals - a[0].literals || a[1] - b[1]).map(([m]) => m);
}

function matchSegments(m: CompiledMethod, parts: readonly string[]): Record<string, string> | undefined | false {
  if (parts.length !== m.segments.length) return false;
  let vars: Record<string, string> | undefined;
  for (let i = 0; i < parts.length; i++) {
    const s = m.segments[i]!;
    const part = parts[i]!;
    if (typeof s === 'string') {
      if (s !== part) return false;
    } else {
      if (part === '') return false;
      let value: string;
      try {
        value = decodeURIComponent(part);
      } catch {
        value = part;
      }
      (vars ??= {})[s.name] = value;
    }
  }
  return vars;
}

export type MatchResult = ResolvedCall | { notFound: true } | { notAllowed: readonly string[] };

/** Find the method for a path and HTTP method (list ordered by orderMethods). */
export function matchMethod(list: readonly CompiledMethod[], path: string, httpMethod: string): MatchResult {
  const parts = splitPath(path);
  let allowed: string[] | undefined;
  for (const m of list) {
    const vars = matchSegments(m, parts);
    if (vars === false) continue;
    if (m.methods && !m.methods.has(httpMethod)) {
      (allowed ??= []).push(...m.methods);
      continue;
    }
    return { method: m, pathVars: vars };
  }
  return allowed ? { notAllowed: [...new Set(allowed)] } : { notFound: true };
}

export interface ArgSources {
  query(name: string): string | undefined;
  header(name: string): string | undefined;
  /** The parsed JSON body (only asked for when the method needs it). */
  body: unknown;
  /** The raw body text (for a String taken from the entire body). */
  bodyText: string;
}

/** Arguments for the call, in parameter order. Throws ParamError naming the parameter. */
export function buildArgs(call: ResolvedCall, src: ArgSources): unknown[] {
  const m = call.method;
  const args: unknown[] = new Array(m.types.length);
  for (let i = 0; i < m.params.length; i++) {
    const p = m.params[i]!;
    let raw: unknown;
    let fromText = true;
    switch (p.source) {
      case 'QUERY':
        raw = src.query(p.lookup);
        break;
      case 'HEADER':
        raw = src.header(p.lookup);
        break;
      case 'PATH':
        raw = call.pathVars?.[p.lookup];
        break;
      case 'BODY': {
        const b = src.body;
        raw = b !== null && typeof b === 'object' && !Array.isArray(b) ? (b as Record<string, unknown>)[p.lookup] : undefined;
        fromText = false;
        break;
      }
    }
    if (raw === undefined || raw === null) {
      if (p.type.primitive) throw new ParamError(`parameter "${p.key}" (${p.source.toLowerCase()}, ${p.type.javaType}) is required`);
      args[i] = null;
      continue;
    }
    try {
      args[i] = p.type.convert(raw, fromText);
    } catch (e) {
      throw new ParamError(`parameter "${p.key}" (${p.source.toLowerCase()}, ${p.type.javaType}): ${(e as Error).message}`);
    }
  }
  if (m.entireBody) {
    const t = m.entireBody;
    let v: unknown;
    if (src.bodyText === '') {
      throw new ParamError(`the request body (${t.javaType}) is required`);
    }
    try {
      // A String parameter takes the body text as it is when it is not a JSON string.
      v = t.javaType === 'java.lang.String' && typeof src.body !== 'string' ? src.bodyText : t.convert(src.body, false);
    } catch (e) {
      throw new ParamError(`request body (${t.javaType}): ${(e as Error).message}`);
    }
    args[m.params.length] = v;
  }
  return args;
}
