// HTTP values -> Java-typed generic invocation arguments.
//
// In a generic call the provider realizes every argument into the declared
// parameter type (Dubbo's PojoUtils), so an argument only has to arrive as
// the right hessian kind: Long as a hessian long, Double as a double, a
// BigDecimal as its decimal string, a POJO as a map with a "class" key.
// Values are checked here so a bad one is a 400 naming the parameter rather
// than a provider-side exception.

export class ParamError extends Error {}

type Converter = (v: unknown, fromText: boolean) => unknown;

const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;
const INTEGER_RE = /^[+-]?\d+$/;
const DECIMAL_RE = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;

function typeName(v: unknown): string {
  return v === null ? 'null' : Array.isArray(v) ? 'array' : typeof v;
}

function fail(expected: string, v: unknown): never {
  const shown = typeof v === 'string' ? JSON.stringify(v.length > 64 ? `${v.slice(0, 64)}...` : v) : typeName(v);
  throw new ParamError(`expected ${expected}, got ${shown}`);
}

function integer(min: number, max: number, label: string): Converter {
  return (v) => {
    let n: number;
    if (typeof v === 'number') n = v;
    else if (typeof v === 'string' && INTEGER_RE.test(v.trim())) n = Number(v.trim());
    else fail(label, v);
    if (!Number.isInteger(n) || n < min || n > max) fail(label, v);
    return n;
  };
}

const toLong: Converter = (v) => {
  let s: string;
  if (typeof v === 'number') {
    if (!Number.isSafeInteger(v)) fail('a 64-bit integer', v);
    return { $class: 'java.lang.Long', $: v };
  }
  if (typeof v !== 'string' || !INTEGER_RE.test((s = v.trim()))) fail('a 64-bit integer', v);
  const b = BigInt(s);
  if (b < INT64_MIN || b > INT64_MAX) fail('a 64-bit integer', v);
  // Beyond 2^53 the value travels as a decimal string (hessian.js writes it exactly).
  const n = Number(b);
  return { $class: 'java.lang.Long', $: Number.isSafeInteger(n) ? n : b.toString() };
};

const toDouble: Converter = (v) => {
  let n: number;
  if (typeof v === 'number') n = v;
  else if (typeof v === 'string' && DECIMAL_RE.test(v.trim())) n = Number(v.trim());
  else fail('a number', v);
  if (!Number.isFinite(n)) fail('a finite number', v);
  // Written as a hessian double even when integral (1 must not become an int).
  return { $class: 'double', $: n };
};

const toBoolean: Converter = (v) => {
  if (typeof v === 'boolean') return v;
  if (typeof v === 'string') {
    const s = v.trim().toLowerCase();
    if (s === 'true') return true;
    if (s === 'false') return false;
  }
  return fail('true or false', v);
};

const toString: Converter = (v) => {
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  return fail('a string', v);
};

const toChar: Converter = (v) => {
  if (typeof v === 'string' && [...v].length === 1) return v;
  return fail('a single character', v);
};

const toDecimal: Converter = (v) => {
  if (typeof v === 'number' && Number.isFinite(v)) return String(v);
  if (typeof v === 'string' && DECIMAL_RE.test(v.trim())) return v.trim();
  return fail('a decimal number', v);
};

const toBigInteger: Converter = (v) => {
  if (typeof v === 'number' && Number.isSafeInteger(v)) return String(v);
  if (typeof v === 'string' && INTEGER_RE.test(v.trim())) return v.trim();
  return fail('an integer', v);
};

const toDate: Converter = (v) => {
  let d: Date;
  if (typeof v === 'number') d = new Date(v);
  else if (typeof v === 'string' && INTEGER_RE.test(v.trim())) d = new Date(Number(v.trim()));
  else if (typeof v === 'string') d = new Date(v);
  else fail('an ISO-8601 date or epoch milliseconds', v);
  if (Number.isNaN(d.getTime())) fail('an ISO-8601 date or epoch milliseconds', v);
  return d;
};

/** Text (query, header, path) holding JSON, for structured types. */
function parseJsonText(v: unknown, fromText: boolean): unknown {
  if (!fromText || typeof v !== 'string') return v;
  try {
    return JSON.parse(v);
  } catch {
    return v;
  }
}

function toList(element: Converter | undefined): Converter {
  return (raw, fromText) => {
    let v = parseJsonText(raw, fromText);
    // From a query string or header, "a,b,c" is a list too.
    if (fromText && typeof v === 'string') v = v === '' ? [] : v.split(',');
    if (!Array.isArray(v)) fail('a JSON array', raw);
    return element ? v.map((e, i) => convertElement(element, e, fromText && typeof raw === 'string' && !raw.trim().startsWith('['), i)) : v;
  };
}

function convertElement(c: Converter, v: unknown, fromText: boolean, i: number): unknown {
  try {
    return c(v, fromText);
  } catch (e) {
    throw new ParamError(`[${i}]: ${(e as Error).message}`);
  }
}

const toMap: Converter = (raw, fromText) => {
  const v = parseJsonText(raw, fromText);
  if (v === null || typeof v !== 'object' || Array.isArray(v)) fail('a JSON object', raw);
  return v;
};

/** A POJO travels as a map whose "class" key names its Java class. */
function toPojo(cls: string): Converter {
  return (raw, fromText) => {
    const v = parseJsonText(raw, fromText);
    if (v === null || typeof v !== 'object' || Array.isArray(v)) fail(`a JSON object for ${cls}`, raw);
    return 'class' in v ? v : { class: cls, ...v };
  };
}

const toAny: Converter = (v, fromText) => parseJsonText(v, fromText);

const PRIMITIVES = new Set(['int', 'long', 'short', 'byte', 'double', 'float', 'boolean', 'char']);

const SCALARS: Record<string, Converter> = {
  'java.lang.String': toString,
  String: toString,
  'java.lang.CharSequence': toString,
  char: toChar,
  'java.lang.Character': toChar,
  int: integer(-0x8000_0000, 0x7fff_ffff, 'a 32-bit integer'),
  'java.lang.Integer': integer(-0x8000_0000, 0x7fff_ffff, 'a 32-bit integer'),
  short: integer(-0x8000, 0x7fff, 'a 16-bit integer'),
  'java.lang.Short': integer(-0x8000, 0x7fff, 'a 16-bit integer'),
  byte: integer(-0x80, 0x7f, 'an 8-bit integer'),
  'java.lang.Byte': integer(-0x80, 0x7f, 'an 8-bit integer'),
  long: toLong,
  'java.lang.Long': toLong,
  double: toDouble,
  'java.lang.Double': toDouble,
  float: toDouble,
  'java.lang.Float': toDouble,
  boolean: toBoolean,
  'java.lang.Boolean': toBoolean,
  'java.math.BigDecimal': toDecimal,
  'java.math.BigInteger': toBigInteger,
  'java.util.Date': toDate,
  'java.sql.Date': toDate,
  'java.sql.Timestamp': toDate,
  'java.lang.Object': toAny,
  'java.util.Map': toMap,
  'java.util.HashMap': toMap,
  'java.util.LinkedHashMap': toMap,
  'java.util.TreeMap': toMap,
  'java.util.concurrent.ConcurrentHashMap': toMap,
};

const COLLECTIONS = new Set([
  'java.util.List',
  'java.util.ArrayList',
  'java.util.LinkedList',
  'java.util.Collection',
  'java.util.Set',
  'java.util.HashSet',
  'java.util.LinkedHashSet',
  'java.util.TreeSet',
]);

/** The element type of an array type name: "java.lang.Long[]", "[Ljava.lang.Long;", "[J". */
function arrayElement(type: string): string | undefined {
  if (type.endsWith('[]')) return type.slice(0, -2);
  if (type.startsWith('[L') && type.endsWith(';')) return type.slice(2, -1);
  const prim: Record<string, string> = { '[I': 'int', '[J': 'long', '[D': 'double', '[F': 'float', '[Z': 'boolean', '[S': 'short', '[C': 'char' };
  if (type.startsWith('[')) return prim[type] ?? 'java.lang.Object';
  return undefined;
}

/** Strip generics: java.util.List<java.lang.Long> -> java.util.List. */
function rawType(type: string): string {
  const lt = type.indexOf('<');
  return lt === -1 ? type.trim() : type.slice(0, lt).trim();
}

export interface CompiledParamType {
  /** The Java type name sent in the generic call's parameter types. */
  readonly javaType: string;
  readonly primitive: boolean;
  convert(v: unknown, fromText: boolean): unknown;
}

/** Compile a paramType. Unknown classes are POJOs. Throws for an empty name. */
export function compileParamType(type: string): CompiledParamType {
  const raw = rawType(type);
  if (!raw) throw new Error('empty paramType');
  const primitive = PRIMITIVES.has(raw);
  const scalar = SCALARS[raw];
  if (scalar) return { javaType: raw, primitive, convert: scalar };
  if (COLLECTIONS.has(raw)) {
    // java.util.List<java.lang.Long>: elements are converted too.
    const inner = type.includes('<') ? type.slice(type.indexOf('<') + 1, type.lastIndexOf('>')).trim() : '';
    const el = inner && SCALARS[rawType(inner)];
    return { javaType: raw, primitive: false, convert: toList(el || undefined) };
  }
  // A byte[] is binary: the client sends base64 text.
  if (raw === 'byte[]' || raw === '[B') {
    return {
      javaType: '[B',
      primitive: false,
      convert: (v) => (typeof v === 'string' ? Buffer.from(v, 'base64') : fail('base64 text', v)),
    };
  }
  const el = arrayElement(raw);
  if (el !== undefined) {
    const c = SCALARS[el] ?? (PRIMITIVES.has(el) ? undefined : toPojo(el));
    return { javaType: raw, primitive: false, convert: toList(c) };
  }
  return { javaType: raw, primitive: false, convert: toPojo(raw) };
}
