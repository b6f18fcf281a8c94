#!/usr/bin/env node
// meshgate start | validate | schema
import cluster from 'node:cluster';
import { availableParallelism } from 'node:os';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { ConfigError, fileProblems, loadConfigFile } from './config/load.js';
import { serviceNameWarnings } from './config/names.js';
import { ConfigSchema, CREDENTIAL_ENTRY_TITLE, FILTER_ENTRY_TITLE } from './config/schema.js';
import { CredentialSchema } from './filters/auth/consumers.js';
import { FILTERS } from './filters/catalog.js';
import { watchConfigFile } from './config/watch.js';
import { Gateway } from './gateway.js';
import { createLogger } from './observability/logger.js';
import { startDemoUpstreams } from './server/demo-upstream.js';
import { runPrimary, runWorker } from './workers.js';

const USAGE = `usage:
  meshgate start [--config FILE] [--workers N] [--demo-upstreams]
  meshgate validate [--strict] FILE   (--strict: warnings are errors)
  meshgate schema
  meshgate hash-password      reads a password on stdin, prints its scrypt hash (basic_auth, admin.auth.basic)

  --config FILE       config file (default: config/meshgate.yaml of the package)
  --workers N         worker processes sharing the listeners (default: CPU count; 1 = single process)
  --demo-upstreams    also start the two echo instances the default config routes to
`;

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

function arg(args: string[], name: string): string | undefined {
  const i = args.indexOf(name);
  if (i === -1) return undefined;
  const v = args[i + 1];
  if (v === undefined || v.startsWith('--')) throw new Error(`${name} needs a value`);
  return v;
}

async function start(args: string[]): Promise<void> {
  const configPath = resolve(arg(args, '--config') ?? resolve(packageRoot, 'config/meshgate.yaml'));
  const workersArg = arg(args, '--workers');
  const workers = workersArg === undefined ? availableParallelism() : Number(workersArg);
  if (!Number.isInteger(workers) || workers < 1) throw new Error('--workers must be a whole number >= 1');
  const config = loadConfigFile(configPath);
  const log = createLogger(config.log.level);
  if (args.includes('--demo-upstreams')) {
    const addrs = config.registries.flatMap((r) => (r.name === 'demo' && r.type === 'static' ? r.endpoints.map((e) => e.split(/\s+/)[0]!) : []));
    await startDemoUpstreams(addrs);
    log.info({ addresses: addrs }, 'demo echo upstreams started');
  }
  let stop: () => Promise<void>;
  let reload: () => Promise<unknown>;
  if (workers === 1) {
    const gw = await Gateway.start({ config, configPath, log });
    stop = () => gw.stop(10_000);
    reload = () => gw.reload();
  } else {
    const primary = await runPrimary({ config, configPath, workers, log });
    stop = () => primary.stop();
    reload = () => primary.gateway.reload();
  }
  const watcher = watchConfigFile(configPath, () => void reload());
  process.on('SIGHUP', () => void reload());
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
  const [cmd, ...args] = argv;
  switch (cmd) {
    case 'start':
      await start(args);
      return -1; // keep running
    case 'validate': {
      const strict = args.includes('--strict');
      const file = args.find((a) => a !== '--strict');
      if (!file) {
        process.stderr.write(USAGE);
        return 2;
      }
      try {
        const cfg = loadConfigFile(file);
        const files = fileProblems(cfg);
        if (files.length > 0) throw new ConfigError(file, files);
        // Compile it too: filters and route handlers check what the schema cannot.
        const { dryCompile } = await import('./server/dry-compile.js');
        await dryCompile(cfg);
        const warnings = serviceNameWarnings(cfg);
        if (strict && warnings.length > 0) throw new ConfigError(file, warnings);
        for (const w of warnings) process.stderr.write(`warning: ${w}\n`);
        process.stdout.write(`${file}: ok (${cfg.routes.length} routes, ${cfg.registries.length} registries${warnings.length ? `, ${warnings.length} warning${warnings.length > 1 ? 's' : ''}` : ''})\n`);
        return 0;
      } catch (e) {
        const problems = e instanceof ConfigError ? e.problems : [(e as Error).message];
        process.stderr.write(`${file}: invalid\n${problems.map((p) => `  ${p}`).join('\n')}\n`);
        return 1;
      }
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
    case '--help':
    case '-h':
    case 'help':
      process.stdout.write(USAGE);
      return 0;
    default:
      process.stderr.write(USAGE);
      return 2;
  }
}

if (cluster.isWorker && process.env.MESHGATE_ROLE === 'worker') {
  runWorker();
} else {
  main(process.argv.slice(2)).then(
    (code) => {
      if (code >= 0) process.exit(code);
    },
    (e) => {
      process.stderr.write(`meshgate: ${e instanceof ConfigError ? e.message : (e as Error).message}\n`);
      process.exit(1);
    },
  );
}
