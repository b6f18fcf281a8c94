// Model patterns, as used by `models:` (which provider serves a model) and by
// each provider's `modelMapping:` (which model name the provider gets).
//
// Order, whatever the order of keys in the config: the exact name; then
// prefixes (`gpt-4o*`), longest first; then regular expressions (`~^gpt-\d`)
// in config order; then the catch-all `*`. The first that matches wins, so
// the answer never depends on how a YAML map happened to be ordered where
// it matters (two prefixes of one length cannot both match one name unless
// equal; two regexes can, and then config order decides).

export interface PatternTable<T> {
  /** The value for a model name, or undefined when nothing matches. */
  lookup(model: string): T | undefined;
  /** The exact names listed (wildcards add nothing). */
  readonly exactNames: readonly string[];
}

export function compilePatterns<T>(entries: Record<string, T>, where: string): PatternTable<T> {
  const exact = new Map<string, T>();
  const prefixes: Array<[string, T]> = [];
  const regexes: Array<[RegExp, T]> = [];
  let any: { v: T } | undefined;
  for (const [k, v] of Object.entries(entries)) {
    if (k === '*') any = { v };
    else if (k.startsWith('~')) {
      try {
        regexes.push([new RegExp(k.slice(1)), v]);
      } catch (e) {
        throw new Error(`${where}["${k}"]: not a regular expression: ${(e as Error).message}`);
      }
    } else if (k.endsWith('*')) {
      const p = k.slice(0, -1);
      if (p.includes('*')) throw new Error(`${where}["${k}"]: "*" may only end a pattern`);
      prefixes.push([p, v]);
    } else {
      if (k.includes('*')) throw new Error(`${where}["${k}"]: "*" may only end a pattern`);
      exact.set(k, v);
    }
  }
  prefixes.sort((a, b) => b[0].length - a[0].length);
  return {
    exactNames: [...exact.keys()],
    lookup(model: string): T | undefined {
      const e = exact.get(model);
      if (e !== undefined || exact.has(model)) return e;
      for (const [p, v] of prefixes) if (model.startsWith(p)) return v;
      for (const [r, v] of regexes) if (r.test(model)) return v;
      return any?.v;
    },
  };
}

/** A provider's modelMapping: the provider's name for a requested model ("" or no match: unchanged). */
export function compileModelMapping(mapping: Record<string, string>, where: string): (model: string) => string {
  const t = compilePatterns(mapping, where);
  return (model) => {
    const m = t.lookup(model);
    return m === undefined || m === '' ? model : m;
  };
}
