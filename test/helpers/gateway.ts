// Start a Gateway in-process for tests, with logs silenced.
import { spawn, type ChildProcess } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import pino from 'pino';
import { request } from 'undici';
import { Gateway } from '../../src/gateway.js';
import type { ConfigInput } from '../../src/config/schema.js';
import type { AccessLogSink } from '../../src/observability/logger.js';
import { freePort } from './upstream.js';

export const quietLog = pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });

/** Config defaults for tests: listener and admin on free ports. */
export function testConfig(partial: Partial<ConfigInput>): ConfigInput {
  return {
    listeners: [{ name: 'public', address: '127.0.0.1:0', protocol: 'http' }],
    admin: { address: '127.0.0.1:0' },
    ...partial,
  } as ConfigInput;
}

export async function startGateway(config: Partial<ConfigInput> | string, opts: { accessLog?: AccessLogSink | false; configPath?: string } = {}): Promise<Gateway> {
  return Gateway.start({
    config: typeof config === 'string' ? config : testConfig(config),
    log: quietLog,
    accessLog: opts.accessLog ?? false,
    configPath: opts.configPath,
  });
}

/** Poll until fn returns truthy or the deadline passes. */
export async function waitFor<T>(fn: () => T | Promise<T>, timeoutMs = 10_000, stepMs = 25): Promise<T> {
  const end = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > end) throw new Error(`waitFor timed out${last ? `: ${(last as Error).message}` : ''}`);
    await new Promise((r) => setTimeout(r, stepMs));
  }
}

/**
 * A config file for spawnGateway in `dir`: a `public` listener and the admin
 * on free ports, warn-level logs without access log, then `rest` (YAML:
 * registries, routes, ...).
 */
export async function spawnConfig(dir: string, rest: string): Promise<{ file: string; port: number; adminPort: number }> {
  const port = await freePort();
  const adminPort = await freePort();
  // Named by the port: several gateways can share one folder.
  const file = join(dir, `gateway-${port}.yaml`);
  await writeFile(
    file,
    `listeners: [{ name: public, address: "127.0.0.1:${port}" }]
admin: { address: "127.0.0.1:${adminPort}" }
log: { level: warn, access: false }
${rest}`,
  );
  return { file, port, adminPort };
}

/** Whether the admin on `adminPort` answers /readyz with 200 (false when nothing answers). */
export async function adminReady(adminPort: number): Promise<boolean> {
  const r = await request(`http://127.0.0.1:${adminPort}/readyz`).catch(() => undefined);
  if (!r) return false;
  await r.body.text();
  return r.statusCode === 200;
}

export interface SpawnedGateway {
  child: ChildProcess;
  /** What the process wrote to stderr so far. */
  stderr(): string;
  /** SIGTERM, then SIGKILL if it has not exited 10 s later; resolves once it exited. */
  stop(): Promise<void>;
}

/**
 * `meshgate start --config FILE --workers N` as its own process (src/cli.ts
 * through tsx), its stderr kept; resolves once the admin's /readyz answers
 * 200 (at once with `waitReady: false`), and fails with the stderr if the
 * process exits first.
 */
export async function spawnGateway(configFile: string, adminPort: number, workers = 2, opts: { waitReady?: boolean } = {}): Promise<SpawnedGateway> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli.ts', 'start', '--config', configFile, '--workers', String(workers)], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr?.on('data', (b: Buffer) => (stderr += b.toString()));
  const stop = async (): Promise<void> => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGTERM');
    const t = setTimeout(() => child.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(t);
  };
  if (opts.waitReady === false) return { child, stderr: () => stderr, stop };
  try {
    await waitFor(
      async () => {
        if (child.exitCode !== null) throw new Error(`gateway exited: ${stderr}`);
        return adminReady(adminPort);
      },
      60_000,
      200,
    );
  } catch (e) {
    await stop();
    throw e;
  }
  return { child, stderr: () => stderr, stop };
}
