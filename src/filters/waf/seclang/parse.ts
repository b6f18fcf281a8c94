// SecLang (ModSecurity / CRS rule language) parser: config text in, an AST
// with file and line on every node out. It only reads syntax; what a rule
// means (which operators, variables and actions the engine runs) is decided
// by the rule set compiler in ../ruleset.ts.
//
// Syntax handled:
// - one directive per logical line; a backslash right before the newline
//   continues the line; lines whose first non-blank character is `#` are
//   comments (only at the start of a logical line, as Apache reads them);
// - arguments are whitespace separated, optionally in double or single
//   quotes; inside quotes only the quote itself can be escaped (`\"`), every
//   other backslash is kept, so regexes reach the operator as written;
// - `SecRule VARIABLES "OPERATOR" ["ACTIONS"]`, `SecAction "ACTIONS"`,
//   `SecMarker NAME`, and any other directive as name + arguments;
// - actions: comma separated `name` or `name:value`, where a value may be
//   single-quoted (`msg:'it\'s'`) and then may hold commas;
// - variables: `|` separated, each `[!|&]NAME[:key]` where the key may be a
//   `/regex/` (which may itself hold `|`) or a quoted string;
// - `chain`: the next SecRule becomes the child of the rule that asked.

export interface VariableSpec {
  /** `!NAME:key`: an exclusion from the rule's other targets. */
  exclude: boolean;
  /** `&NAME`: the number of values instead of the values. */
  count: boolean;
  /** Upper-cased variable name (`ARGS`, `REQUEST_HEADERS`, `TX`). */
  name: string;
  /** Selector after `:` (regex without its slashes when `keyIsRegex`). */
  key?: string;
  keyIsRegex: boolean;
  /** The spec as written. */
  raw: string;
}

export interface OperatorSpec {
  /** `!@rx`: the rule matches when the operator does not. */
  negated: boolean;
  /** Name as written after `@` (`rx`, `pmFromFile`); `rx` when the operator has no `@`. */
  name: string;
  /** The argument as written (macros not expanded). */
  arg: string;
  raw: string;
}

export interface ActionSpec {
  /** Lower-cased action name (`setvar`, `skipafter`, `t`). */
  name: string;
  /** Value after `:` with quotes removed; undefined for bare actions (`pass`, `chain`). */
  value?: string;
}

interface NodeBase {
  file: string;
  line: number;
}

export interface SecRuleNode extends NodeBase {
  type: 'rule';
  variables: VariableSpec[];
  variablesRaw: string;
  operator: OperatorSpec;
  actions: ActionSpec[];
  /** The chained child rule (the parent has the `chain` action). */
  chain?: SecRuleNode;
}

export interface SecActionNode extends NodeBase {
  type: 'action';
  actions: ActionSpec[];
  chain?: SecRuleNode;
}

export interface SecMarkerNode extends NodeBase {
  type: 'marker';
  name: string;
}

export interface DirectiveNode extends NodeBase {
  type: 'directive';
  /** Name as written (`SecRuleUpdateTargetById`). */
  name: string;
  args: string[];
}

export type ConfigNode = SecRuleNode | SecActionNode | SecMarkerNode | DirectiveNode;

export interface ParseIssue {
  file: string;
  line: number;
  message: string;
}

export interface ParseResult {
  nodes: ConfigNode[];
  errors: ParseIssue[];
  /** Directives this parser does not know (still returned as DirectiveNode). */
  unknownDirectives: ParseIssue[];
}

// ModSecurity v3 / Coraza configuration directives besides SecRule, SecAction
// and SecMarker. Anything else is reported as unknown.
const KNOWN_DIRECTIVES = new Set(
  [
    'SecArgumentSeparator', 'SecArgumentsLimit', 'SecAuditEngine', 'SecAuditLog', 'SecAuditLog2', 'SecAuditLogDirMode',
    'SecAuditLogFileMode', 'SecAuditLogFormat', 'SecAuditLogParts', 'SecAuditLogRelevantStatus', 'SecAuditLogStorageDir',
    'SecAuditLogType', 'SecCollectionTimeout', 'SecComponentSignature', 'SecConnEngine', 'SecContentInjection',
    'SecCookieFormat', 'SecCookieV0Separator', 'SecDataDir', 'SecDebugLog', 'SecDebugLogLevel', 'SecDefaultAction',
    'SecDisableBackendCompression', 'SecGeoLookupDb', 'SecGsbLookupDb', 'SecHashEngine', 'SecHashKey', 'SecHashParam',
    'SecHashMethodRx', 'SecHashMethodPm', 'SecHttpBlKey', 'SecInterceptOnError', 'SecPcreMatchLimit',
    'SecPcreMatchLimitRecursion', 'SecRemoteRules', 'SecRemoteRulesFailAction', 'SecRequestBodyAccess',
    'SecRequestBodyInMemoryLimit', 'SecRequestBodyJsonDepthLimit', 'SecRequestBodyLimit', 'SecRequestBodyLimitAction',
    'SecRequestBodyNoFilesLimit', 'SecResponseBodyAccess', 'SecResponseBodyLimit', 'SecResponseBodyLimitAction',
    'SecResponseBodyMimeType', 'SecResponseBodyMimeTypesClear', 'SecRuleEngine', 'SecRuleInheritance', 'SecRulePerfTime',
    'SecRuleRemoveById', 'SecRuleRemoveByMsg', 'SecRuleRemoveByTag', 'SecRuleScript', 'SecRuleUpdateActionById',
    'SecRuleUpdateTargetById', 'SecRuleUpdateTargetByMsg', 'SecRuleUpdateTargetByTag', 'SecSensorId',
    'SecServerSignature', 'SecStatusEngine', 'SecStreamInBodyInspection', 'SecStreamOutBodyInspection', 'SecTmpDir',
    'SecTmpSaveUploadedFiles', 'SecUnicodeMapFile', 'SecUnicodeCodePage', 'SecUploadDir', 'SecUploadFileLimit',
    'SecUploadFileMode', 'SecUploadKeepFiles', 'SecWebAppId', 'SecXmlExternalEntity', 'Include',
  ].map((d) => d.toLowerCase()),
);

/** Parses one config file's text. Never throws: problems land in `errors`. */
export function parseSecLang(text: string, file: string): ParseResult {
  const nodes: ConfigNode[] = [];
  const errors: ParseIssue[] = [];
  const unknownDirectives: ParseIssue[] = [];
  // The rule waiting for its chained child (the deepest one of the chain).
  let chainParent: SecRuleNode | SecActionNode | undefined;

  for (const { text: lineText, line } of logicalLines(text)) {
    const trimmed = lineText.trim();
    if (trimmed === '' || trimmed.startsWith('#')) continue;
    let args: string[];
    try {
      args = splitArgs(trimmed);
    } catch (err) {
      errors.push({ file, line, message: (err as Error).message });
      continue;
    }
    const name = args[0]!;
    const lname = name.toLowerCase();
    try {
      if (lname === 'secrule') {
        if (args.length < 3 || args.length > 4) throw new SyntaxError(`SecRule takes 2 or 3 arguments, got ${args.length - 1}`);
        const node: SecRuleNode = {
          type: 'rule',
          file,
          line,
          variables: parseVariables(args[1]!),
          variablesRaw: args[1]!,
          operator: parseOperator(args[2]!),
          actions: args.length === 4 ? parseActions(args[3]!) : [],
        };
        if (chainParent) {
          chainParent.chain = node;
          chainParent = undefined;
        } else {
          nodes.push(node);
        }
        if (hasAction(node.actions, 'chain')) chainParent = node;
      } else {
        if (chainParent) {
          // The parent is left without a child (the compiler reports it); this directive still counts.
          errors.push({ file, line, message: `a chained rule must be followed by a SecRule, not ${name}` });
          chainParent = undefined;
        }
        if (lname === 'secaction') {
          if (args.length !== 2) throw new SyntaxError(`SecAction takes 1 argument, got ${args.length - 1}`);
          const node: SecActionNode = { type: 'action', file, line, actions: parseActions(args[1]!) };
          nodes.push(node);
          if (hasAction(node.actions, 'chain')) chainParent = node;
        } else if (lname === 'secmarker') {
          if (args.length !== 2) throw new SyntaxError(`SecMarker takes 1 argument, got ${args.length - 1}`);
          nodes.push({ type: 'marker', file, line, name: args[1]! });
        } else {
          if (!KNOWN_DIRECTIVES.has(lname)) unknownDirectives.push({ file, line, message: `unknown directive ${name}` });
          nodes.push({ type: 'directive', file, line, name, args: args.slice(1) });
        }
      }
    } catch (err) {
      // A broken link ends the chain: the parent is left without a child (the compiler reports it).
      chainParent = undefined;
      errors.push({ file, line, message: (err as Error).message });
    }
  }
  if (chainParent) errors.push({ file, line: chainParent.line, message: 'chain action on the last rule of the file' });
  return { nodes, errors, unknownDirectives };
}

function hasAction(actions: ActionSpec[], name: string): boolean {
  for (const a of actions) if (a.name === name) return true;
  return false;
}

/** Joins continued lines; yields each logical line with the number of its first physical line. */
function* logicalLines(text: string): Generator<{ text: string; line: number }> {
  const lines = text.split('\n');
  let buf = '';
  let start = 0;
  let open = false;
  for (let i = 0; i < lines.length; i++) {
    let l = lines[i]!;
    if (l.endsWith('\r')) l = l.slice(0, -1);
    if (!open) {
      start = i + 1;
      buf = '';
    }
    if (l.endsWith('\\')) {
      // The backslash and the newline are replaced by one space, as Apache and libmodsecurity do.
      buf += l.slice(0, -1) + ' ';
      open = true;
      continue;
    }
    buf += l;
    open = false;
    yield { text: buf, line: start };
  }
  if (open) yield { text: buf, line: start };
}

/** Splits a directive line into its name and arguments, removing quotes. */
export function splitArgs(s: string): string[] {
  const out: string[] = [];
  let i = 0;
  const n = s.length;
  while (i < n) {
    const c = s[i]!;
    if (c === ' ' || c === '\t') {
      i++;
      continue;
    }
    if (c === '"' || c === "'") {
      let j = i + 1;
      let v = '';
      for (;;) {
        if (j >= n) throw new SyntaxError(`unterminated ${c === '"' ? 'double' : 'single'}-quoted argument`);
        const d = s[j]!;
        if (d === '\\' && s[j + 1] === c) {
          v += c;
          j += 2;
          continue;
        }
        if (d === c) break;
        v += d;
        j++;
      }
      out.push(v);
      i = j + 1;
      if (i < n && s[i] !== ' ' && s[i] !== '\t') throw new SyntaxError('a quoted argument must be followed by whitespace');
      continue;
    }
    let j = i;
    while (j < n && s[j] !== ' ' && s[j] !== '\t') j++;
    out.push(s.slice(i, j));
    i = j;
  }
  return out;
}

/** Parses `ARGS|!ARGS:foo|&REQUEST_HEADERS:Host|TX:/^x_/`. */
export function parseVariables(spec: string): VariableSpec[] {
  const out: VariableSpec[] = [];
  let i = 0;
  const n = spec.length;
  while (i < n) {
    while (i < n && (spec[i] === ' ' || spec[i] === '\t')) i++;
    const start = i;
    let exclude = false;
    let count = false;
    if (spec[i] === '!') {
      exclude = true;
      i++;
    } else if (spec[i] === '&') {
      count = true;
      i++;
    }
    let j = i;
    while (j < n && /[A-Za-z0-9_]/.test(spec[j]!)) j++;
    const name = spec.slice(i, j).toUpperCase();
    if (name === '') throw new SyntaxError(`variable name expected at "${spec.slice(start)}"`);
    let key: string | undefined;
    let keyIsRegex = false;
    i = j;
    if (spec[i] === ':') {
      i++;
      if (name === 'XML') {
        // XPath expressions (`/*`, `//@*`) are not regexes.
        let k = i;
        while (k < n && spec[k] !== '|') k++;
        key = spec.slice(i, k);
        i = k;
      } else if (spec[i] === '/') {
        let k = i + 1;
        while (k < n && spec[k] !== '/') k += spec[k] === '\\' ? 2 : 1;
        if (k >= n) throw new SyntaxError(`unterminated /regex/ key in "${spec.slice(start)}"`);
        key = spec.slice(i + 1, k);
        keyIsRegex = true;
        i = k + 1;
      } else if (spec[i] === "'") {
        const k = spec.indexOf("'", i + 1);
        if (k < 0) throw new SyntaxError(`unterminated quoted key in "${spec.slice(start)}"`);
        key = spec.slice(i + 1, k);
        i = k + 1;
      } else {
        let k = i;
        while (k < n && spec[k] !== '|') k++;
        key = spec.slice(i, k).trim();
        i = k;
      }
      if (key === '') throw new SyntaxError(`empty key in "${spec.slice(start)}"`);
    }
    while (i < n && (spec[i] === ' ' || spec[i] === '\t')) i++;
    if (i < n && spec[i] !== '|') throw new SyntaxError(`unexpected "${spec[i]}" in variables "${spec}"`);
    out.push({ exclude, count, name, key, keyIsRegex, raw: spec.slice(start, i).trim() });
    i++;
  }
  if (out.length === 0) throw new SyntaxError('no variables');
  return out;
}

/** Parses `@rx foo`, `!@eq 0`, `@detectSQLi`, or a bare regex (implicit `@rx`). */
export function parseOperator(raw: string): OperatorSpec {
  let s = raw;
  let negated = false;
  // ModSecurity allows blanks before the `!` and the `@`.
  s = s.replace(/^[ \t]+/, '');
  if (s.startsWith('!')) {
    negated = true;
    s = s.slice(1).replace(/^[ \t]+/, '');
  }
  if (!s.startsWith('@')) return { negated, name: 'rx', arg: s, raw };
  const m = /^@([A-Za-z0-9_]+)/.exec(s);
  if (!m) throw new SyntaxError(`operator name expected in "${raw}"`);
  let arg = s.slice(m[0].length);
  if (arg !== '' && arg[0] !== ' ' && arg[0] !== '\t') throw new SyntaxError(`bad operator "${raw}"`);
  arg = arg.replace(/^[ \t]+/, '');
  return { negated, name: m[1]!, arg, raw };
}

/** Parses the comma separated action list of a SecRule/SecAction/SecDefaultAction. */
export function parseActions(s: string): ActionSpec[] {
  const out: ActionSpec[] = [];
  let i = 0;
  const n = s.length;
  while (i < n) {
    while (i < n && (s[i] === ' ' || s[i] === '\t' || s[i] === ',')) i++;
    if (i >= n) break;
    let j = i;
    while (j < n && s[j] !== ':' && s[j] !== ',') j++;
    const name = s.slice(i, j).trim().toLowerCase();
    if (!/^[a-z0-9_]+$/.test(name)) throw new SyntaxError(`bad action name "${s.slice(i, j).trim()}"`);
    if (j >= n || s[j] === ',') {
      out.push({ name });
      i = j + 1;
      continue;
    }
    // Value after the colon: single-quoted (commas allowed, \' escapes a quote) or up to the next comma.
    let k = j + 1;
    while (k < n && (s[k] === ' ' || s[k] === '\t')) k++;
    let value: string;
    if (s[k] === "'") {
      let v = '';
      let m = k + 1;
      for (;;) {
        if (m >= n) throw new SyntaxError(`unterminated quoted value of action ${name}`);
        const c = s[m]!;
        if (c === '\\' && s[m + 1] === "'") {
          v += "'";
          m += 2;
          continue;
        }
        if (c === "'") break;
        v += c;
        m++;
      }
      value = v;
      m++;
      while (m < n && (s[m] === ' ' || s[m] === '\t')) m++;
      if (m < n && s[m] !== ',') throw new SyntaxError(`unexpected text after the quoted value of action ${name}`);
      i = m + 1;
    } else {
      let m = k;
      while (m < n && s[m] !== ',') m++;
      value = s.slice(k, m).trim();
      i = m + 1;
    }
    out.push({ name, value });
  }
  return out;
}
