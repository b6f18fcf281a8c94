// Contracts between the WAF's parts: the rule language (seclang/), the
// operators and transformations, the request variables, and the engine.
//
// Every value the WAF inspects is a byte string: a JS string with one char
// per byte (latin1), as ModSecurity sees bytes. Transformations take and
// return byte strings; operators match byte strings.

/** A transformation (`t:lowercase`): byte string in, byte string out. */
export type Transform = (input: string) => string;

/** A compiled operator (`@rx ...`, `@pm ...`, `@detectSQLi`). */
export interface CompiledOperator {
  /**
   * Matches one value. Returns undefined when it does not match; otherwise
   * the captures: [0] is the matched text (what `%{TX.0}` shows), [1..] the
   * groups (only @rx with the `capture` action uses them).
   */
  match(input: string): string[] | undefined;
  /**
   * Whether `match` would match, for rules that do not read the captures:
   * cheaper where finding the groups costs more than finding a match (RE2
   * with captures runs its NFA: 110 ms on a 16 KiB request line, 4 ms without).
   */
  test?(input: string): boolean;
}

/** What operators may need from the rule set around them. */
export interface OperatorContext {
  /** Folder `@pmFromFile`/`@ipMatchFromFile` names are resolved against (the rules folder). */
  dataDir: string;
}

/** Thrown when a rule uses something this engine does not run; the rule is reported, never silently skipped. */
export class UnsupportedFeature extends Error {
  constructor(readonly feature: string, detail?: string) {
    super(detail ? `${feature}: ${detail}` : feature);
  }
}

/** One named value of a collection (ARGS:foo = bar). */
export interface VarEntry {
  name: string;
  value: string;
  /**
   * What the WAF engine learnt about `value` (engine.ts Slots), kept on the
   * entry so that a value in several lists (ARGS and ARGS_POST), or an entry
   * reused across requests (a JSON leaf whose value repeats, see
   * request-vars.ts JName), is not looked up again. Absent: the entry takes
   * no memo; null: it takes one and has none yet. Set and read by the engine only.
   */
  memo?: object | null;
}

/**
 * The request as the rules see it. Collections (ARGS, REQUEST_HEADERS, ...)
 * are lists of entries in request order; names keep their case (collection
 * keys match case-insensitively). Scalars are byte strings.
 */
export interface RequestVars {
  collections: ReadonlyMap<string, readonly VarEntry[]>;
  scalars: ReadonlyMap<string, string>;
}
