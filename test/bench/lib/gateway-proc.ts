// A meshgate process as users start it (compiled dist/, `start --config FILE
// --workers N`, the launchers' V8 flags), with its config written from an
// object, and the admin API calls the scale benches read.
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, GATEWAY_NODE_ARGS, NODE_FLAGS, ROOT, startProcess, stopProcess, waitForPort } from './procs.js';

export interface GatewayProc {
  child: ChildProcess;
  pid: number;
  url: string;
  admin: string;
  configFile: string;
  /** The inspector port when started with `inspect` (lib/inspector.ts reads the heap through it). */
  inspectPort?: number;
  stop(): Promise<void>;
}

const tmp = mkdtempSync(join(tmpdir(), 'meshgate-bench-gw-'));
process.on('exit', () => rmSync(tmp, { recursive: true, force: true }));

export interface GatewayConfigParts {
  registries: unknown[];
  routes: unknown[];
  services?: Record<string, unknown>;
}

export function gatewayConfig(port: number, admin: number, parts: GatewayConfigParts): Record<string, unknown> {
  return {
    listeners: [{ name: 'public', address: `127.0.0.1:${port}`, protocol: 'http' }],
    admin: { address: `127.0.0.1:${admin}` },
    log: { level: 'warn', access: false },
    ...parts,
  };
}

export async function startGateway(name: string, parts: GatewayConfigParts, o: { workers?: number; inspect?: boolean; dist?: string; cpu?: number } = {}): Promise<GatewayProc> {
  const port = await freePort();
  const admin = await freePort();
  const inspectPort = o.inspect ? await freePort() : undefined;
  const configFile = join(tmp, `${name}.json`);
  // JSON is YAML: the config loader reads it as is.
  writeFileSync(configFile, JSON.stringify(gatewayConfig(port, admin, parts)));
  const cli = join(o.dist ?? join(ROOT, 'dist'), 'src/cli.js');
  // BENCH_GATEWAY_NODE_ARGS: extra node flags for the gateway (e.g. --perf-basic-prof to profile it with perf).
  const args = [...NODE_FLAGS, ...GATEWAY_NODE_ARGS, ...(inspectPort ? [`--inspect=127.0.0.1:${inspectPort}`] : []), cli, 'start', '--config', configFile, '--workers', String(o.workers ?? 1)];
  const child = startProcess(name, process.execPath, args, o.cpu);
  await waitForPort(port, name, 120_000, child);
  await waitForPort(admin, `${name} admin`, 120_000, child);
  return {
    child,
    pid: child.pid!,
    url: `http://127.0.0.1:${port}`,
    admin: `http://127.0.0.1:${admin}`,
    configFile,
    inspectPort,
    stop: () => stopProcess(child),
  };
}

/** Endpoints the gateway (the primary, with workers) holds for services whose name starts with `prefix`, from meshgate_endpoints. */
export async function endpointCount(gw: GatewayProc, prefix: string): Promise<number> {
  const text = await (await fetch(`${gw.admin}/metrics`)).text();
  let n = 0;
  const re = /^meshgate_endpoints\{service="([^"]*)"\} (\d+)/gm;
  for (let m = re.exec(text); m; m = re.exec(text)) if (m[1]!.startsWith(prefix)) n += Number(m[2]);
  return n;
}

interface ServiceView {
  name: string;
  version: number;
  endpoints: Array<{ host?: string; port?: number; address?: string }>;
}

/** Sum of the table versions (one per applied change) of services starting with `prefix`, in the process that answers /api/services. */
export async function versionSum(gw: GatewayProc, prefix: string): Promise<number> {
  const list = (await (await fetch(`${gw.admin}/api/services`)).json()) as ServiceView[];
  return list.filter((s) => s.name.startsWith(prefix)).reduce((a, s) => a + s.version, 0);
}

/** Each worker's view: pid, version sum and endpoint count of services starting with `prefix` (--workers N > 1 only). */
export async function workerViews(gw: GatewayProc, prefix: string): Promise<Array<{ pid: number; versions: number; endpoints: number; services: number }>> {
  const body = (await (await fetch(`${gw.admin}/api/services?live=1`)).json()) as { workers: Array<{ pid: number; services: ServiceView[] }> };
  return body.workers.map((w) => {
    const mine = w.services.filter((s) => s.name.startsWith(prefix));
    return { pid: w.pid, versions: mine.reduce((a, s) => a + s.version, 0), endpoints: mine.reduce((a, s) => a + s.endpoints.length, 0), services: mine.length };
  });
}

/**
 * A round trip to every worker that queues behind every endpoint change the
 * primary sent before it (the IPC channel is ordered and a worker applies
 * endpoint messages as they arrive): when it returns, each worker has applied
 * all of them. Uses /api/resilience?live=1, whose answer is small. Returns the
 * number of workers that answered (the primary gives up on a worker after 2 s).
 */
export async function workersBarrier(gw: GatewayProc): Promise<number> {
  const body = (await (await fetch(`${gw.admin}/api/resilience?live=1`)).json()) as { workers?: unknown[] };
  return body.workers?.length ?? 1;
}
