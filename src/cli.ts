#!/usr/bin/env node
// meshgate start | validate | schema
import cluster from 'node:cluster';
import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { dirname, resolve } from 'node:path';
import v8 from 'node:v8';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { ConfigError, parseConfigText, readConfigFile } from './config/load.js';
import { ConfigSchema, CREDENTIAL_ENTRY_TITLE, FILTER_ENTRY_TITLE } from './config/schema.js';
import { CredentialSchema } from './filters/auth/consumers.js';
import { FILTERS } from './filters/catalog.js';
import { watchConfigFile } from './config/watch.js';
import { Gateway } from './gateway.js';
import { createLogger } from './observability/logger.js';
import { startDemoUpstreams } from './server/demo-upstream.js';
import { installLeanAsyncResourceBind } from './upstreams/async-resource-bind.js';
import { checkConfigText, type ConfigCheck } from './server/dry-compile.js';
import { runPrimary, runWorker } from './workers.js';

/** Each command: its flags (true: takes a value), how many arguments it takes, and its help. */
const COMMANDS: Record<string, { flags: Record<string, boolean>; args: number; usage: string; help: string }> = {
  start: {
    flags: { '--config': true, '--workers': true, '--demo-upstreams': false },
    args: 0,
    usage: 'meshgate start [--config FILE] [--workers N] [--demo-upstreams]',
    help: `  --config FILE       config file (default: config/meshgate.yaml of the package)
  --workers N         worker processes sharing the listeners (default: CPU count; 1 = single process)
  --demo-upstreams    also start the two echo instances the default config routes to
Runs until SIGTERM or SIGINT (drains requests in flight); SIGHUP or a change to the file reloads it.`,
  },
  validate: {
    flags: { '--strict': false },
    args: 1,
    usage: 'meshgate validate [--strict] FILE',
    help: `  Checks FILE as start would (schema, references, ports, TLS files, filters) without starting.
  Service names no configured registry can give are warnings; --strict makes them errors.`,
  },
  schema: { flags: {}, args: 0, usage: 'meshgate schema', help: '  Prints the config\'s JSON schema (for editors).' },
  'hash-password': {
    flags: {},
    args: 0,
    usage: 'meshgate hash-password',
    help: '  Reads a password on stdin, prints its scrypt hash (basic_auth credentials, admin.auth.basic).',
  },
};

const USAGE = `usage:
${Object.values(COMMANDS)
  .map((c) => `  ${c.usage}`)
  .join('\n')}
  meshgate --version | --help | COMMAND --help

${COMMANDS.start!.help.split('\nRuns')[0]}

exit codes: 0 ok; 1 the config is invalid or the gateway could not start; 2 a usage error (unknown command or option)
`;

/** A command line that does not fit its command (exit code 2). */
class UsageError extends Error {}

interface Parsed {
  flags: Map<string, string | true>;
  args: string[];
}

/** Parses a command's arguments: `--flag`, `--flag value`, `--flag=value`; anything unknown is an error naming it. */
function parseArgs(cmd: string, argv: readonly string[]): Parsed | 'help' {
  const spec = COMMANDS[cmd]!;
  const out: Parsed = { flags: new Map(), args: [] };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--help' || a === '-h') return 'help';
    if (a.startsWith('-') && a !== '-') {
      const eq = a.indexOf('=');
      const name = eq === -1 ? a : a.slice(0, eq);
      const takes = spec.flags[name];
      if (takes === undefined) {
        const known = Object.keys(spec.flags);
        throw new UsageError(`meshgate ${cmd}: unknown option ${name}${known.length ? ` (options: ${known.join(', ')})` : ' (it takes none)'}`);
      }
      if (out.flags.has(name)) throw new UsageError(`meshgate ${cmd}: ${name} given twice`);
      if (!takes) {
        if (eq !== -1) throw new UsageError(`meshgate ${cmd}: ${name} takes no value`);
        out.flags.set(name, true);
        continue;
      }
      const value = eq !== -1 ? a.slice(eq + 1) : argv[++i];
      if (value === undefined || value === '' || (eq === -1 && value.startsWith('--'))) throw new UsageError(`meshgate ${cmd}: ${name} needs a value`);
      out.flags.set(name, value);
      continue;
    }
    if (out.args.length >= spec.args) throw new UsageError(`meshgate ${cmd}: unexpected argument "${a}"`);
    out.args.push(a);
  }
  if (out.args.length < spec.args) throw new UsageError(`meshgate ${cmd}: missing argument (usage: ${spec.usage})`);
  return out;
}

function version(): string {
  return (JSON.parse(readFileSync(resolve(packageRoot, 'package.json'), 'utf8')) as { version: string }).version;
}

const here = dirname(fileURLToPath(import.meta.url));
// src/cli.ts and dist/src/cli.js both live two levels below the package root at most
const packageRoot = resolve(here, here.includes(`${'dist'}`) ? '../..' : '..');

/**
 * The config's JSON schema (for editors). `filters:` entries are checked by
 * their kinds at compile time; here each entry is described by its kind's
 * own schema, so editors see every filter's keys.
 */
export function jsonSchema(): unknown {
  const filterKinds = { oneOf: FILTERS.map((p) => z.toJSONSchema(p.schema, { io: 'input', unrepresentable: 'any' })) };
  for (const k of filterKinds.oneOf) delete (k as { $schema?: string }).$schema;
  // Consumers' credentials likewise: each kind's keys (src/filters/auth/consumers.ts).
  const credentialKinds = z.toJSONSchema(CredentialSchema, { io: 'input', unrepresentable: 'any' }) as { $schema?: string };
  delete credentialKinds.$schema;
  const replace = (node: unknown): unknown => {
    if (Array.isArray(node)) return node.map(replace);
    if (node === null || typeof node !== 'object') return node;
    if ((node as { title?: string }).title === FILTER_ENTRY_TITLE) return filterKinds;
    if ((node as { title?: string }).title === CREDENTIAL_ENTRY_TITLE) return credentialKinds;
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(node)) out[k] = replace(v);
    return out;
  };
  return replace(z.toJSONSchema(ConfigSchema, { io: 'input', unrepresentable: 'any' }));
}

async function start(p: Parsed): Promise<void> {
  const configArg = p.flags.get('--config') as string | undefined;
  const configPath = resolve(configArg ?? resolve(packageRoot, 'config/meshgate.yaml'));
  const workersArg = p.flags.get('--workers') as string | undefined;
  const workers = workersArg === undefined ? availableParallelism() : Number(workersArg);
  if (!Number.isInteger(workers) || workers < 1) throw new UsageError('meshgate start: --workers must be a whole number >= 1');
  // Read once: the gateway records this text as the one serving, which the file watch and the console compare against.
  const configText = readConfigFile(configPath);
  const config = parseConfigText(configText, configPath);
  const log = createLogger(config.log.level);
  if (p.flags.has('--demo-upstreams')) {
    const addrs = config.registries.flatMap((r) => (r.name === 'demo' && r.type === 'static' ? r.endpoints.map((e) => e.split(/\s+/)[0]!) : []));
    await startDemoUpstreams(addrs);
    log.info({ addresses: addrs }, 'demo echo upstreams started');
  }
  let stop: () => Promise<void>;
  let gw: Gateway;
  if (workers === 1) {
    gw = await Gateway.start({ config, configText, configPath, log });
    stop = () => gw.stop(10_000);
  } else {
    const primary = await runPrimary({ config, configText, configPath, workers, log });
    gw = primary.gateway;
    stop = () => primary.stop();
  }
  // The watch skips a file whose text already serves (the console writes the file and applies it itself);
  // SIGHUP always reloads (certificate files may have changed under an unchanged config).
  const watcher = watchConfigFile(configPath, () => void gw.reload(undefined, { ifFileChanged: true }));
  process.on('SIGHUP', () => void gw.reload(undefined, { by: 'SIGHUP' }));
  let stopping = false;
  const shutdown = (sig: string): void => {
    if (stopping) return;
    stopping = true;
    log.info({ signal: sig }, 'shutting down: draining requests in flight');
    watcher.close();
    void stop().finally(() => process.exit(0));
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
}

async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  if (cmd === undefined || cmd === '--help' || cmd === '-h' || cmd === 'help') {
    (cmd === undefined ? process.stderr : process.stdout).write(USAGE);
    return cmd === undefined ? 2 : 0;
  }
  if (cmd === '--version' || cmd === '-v' || cmd === 'version') {
    process.stdout.write(`meshgate ${version()}\n`);
    return 0;
  }
  const spec = COMMANDS[cmd];
  if (spec === undefined) throw new UsageError(`meshgate: unknown command "${cmd}" (commands: ${Object.keys(COMMANDS).join(', ')}; meshgate --help)`);
  const parsed = parseArgs(cmd, rest);
  if (parsed === 'help') {
    process.stdout.write(`usage: ${spec.usage}\n${spec.help}\n`);
    return 0;
  }
  switch (cmd) {
    case 'start':
      await start(parsed);
      return -1; // keep running
    case 'validate': {
      const strict = parsed.flags.has('--strict');
      const file = parsed.args[0]!;
      let check: ConfigCheck;
      try {
        check = await checkConfigText(readConfigFile(file), file, strict);
      } catch (e) {
        check = { ok: false, problems: e instanceof ConfigError ? e.problems : [(e as Error).message], warnings: [] };
      }
      if (!check.ok) {
        process.stderr.write(`${file}: invalid\n${check.problems.map((p) => `  ${p}`).join('\n')}\n`);
        return 1;
      }
      const { config: cfg, warnings } = check;
      for (const w of warnings) process.stderr.write(`warning: ${w}\n`);
      process.stdout.write(`${file}: ok (${cfg.routes.length} routes, ${cfg.registries.length} registries${warnings.length ? `, ${warnings.length} warning${warnings.length > 1 ? 's' : ''}` : ''})\n`);
      return 0;
    }
    case 'schema':
      process.stdout.write(`${JSON.stringify(jsonSchema(), null, 2)}\n`);
      return 0;
    case 'hash-password': {
      // From stdin, not the command line: arguments end up in shell history and process lists.
      const chunks: Buffer[] = [];
      for await (const c of process.stdin) chunks.push(c as Buffer);
      const password = Buffer.concat(chunks).toString('utf8').replace(/\r?\n$/, '');
      if (!password) {
        process.stderr.write('hash-password: no password on stdin\n');
        return 2;
      }
      const { hashPassword } = await import('./filters/auth/password.js');
      process.stdout.write(`${await hashPassword(password)}\n`);
      return 0;
    }
    default:
      return 2;
  }
}

// V8's allocation-site pretenuring allocates a site's objects straight in the
// old generation once most of them outlive a scavenge. Per-request objects
// that wait across an await (a request's WAF state while its body arrives)
// pass that test under load, and from then on every request's objects from
// those sites were promoted garbage: with a 2 KiB JSON POST through the WAF,
// scavenges took 12 % of the CPU (20 ms each) instead of 2 % (2.4 ms), and
// throughput was a third lower (BENCHMARKS.md, WAF). The gateway's long-lived
// tables are built once and do not need it.
v8.setFlagsFromString('--no-allocation-site-pretenuring');

// The old generation may grow to twice what survived the last full
// collection before the next one (Go's default, GOGC=100). V8's own factor
// follows how fast the heap grows against how fast it collects: with 100,000
// endpoints (about 107 MB live) and 1,000 registry changes a second it chose
// about 1.1, so a full collection (8-25 ms with the proxy stalled) came every
// 1.2 s; with this factor none came in two 13 s churn runs, and the p99 added
// by churn fell from 27-35 ms to 12-24 ms (BENCHMARKS.md, churn). The cost is
// memory: up to twice the live heap between full collections. A user's own
// --heap-growing-percent (node flags or NODE_OPTIONS) is kept.
const userFlags = `${process.execArgv.join(' ')} ${process.env.NODE_OPTIONS ?? ''}`;
if (!/heap[-_]growing[-_]percent/.test(userFlags)) v8.setFlagsFromString('--heap-growing-percent=100');

// node:http2 binds every upstream request to an AsyncResource; Node 20's bind
// costs about 12 µs a call for a deprecated accessor. The lean one behaves
// the same (src/upstreams/async-resource-bind.ts; BENCHMARKS.md, HTTP/2).
installLeanAsyncResourceBind();

if (cluster.isWorker && process.env.MESHGATE_ROLE === 'worker') {
  runWorker();
} else {
  main(process.argv.slice(2)).then(
    (code) => {
      if (code >= 0) process.exit(code);
    },
    (e) => {
      if (e instanceof UsageError) {
        process.stderr.write(`${e.message}\n`);
        process.exit(2);
      }
      process.stderr.write(`meshgate: ${e instanceof ConfigError ? e.message : (e as Error).message}\n`);
      process.exit(1);
    },
  );
}
