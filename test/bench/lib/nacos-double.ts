// Drives test/bench/lib/nacos-grpc-double-child.ts from a bench: start it,
// send it commands, await the answers.
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { ROOT } from './procs.js';

export interface NacosDoubleProcess {
  child: ChildProcess;
  /** What the gateway's registry config names as server (gRPC = this port + 1000). */
  httpAddress: string;
  call(op: string, args?: Record<string, unknown>): Promise<Record<string, unknown>>;
  stop(): void;
}

export async function startNacosDoubleProcess(cpu?: number): Promise<NacosDoubleProcess> {
  const args = ['--import', 'tsx', 'test/bench/lib/nacos-grpc-double-child.ts'];
  const child = cpu === undefined ? spawn(process.execPath, args, { cwd: ROOT, stdio: ['pipe', 'pipe', 'inherit'] }) : spawn('taskset', ['-c', String(cpu), process.execPath, ...args], { cwd: ROOT, stdio: ['pipe', 'pipe', 'inherit'] });
  process.on('exit', () => child.kill('SIGKILL'));
  const waiting = new Map<number, (r: Record<string, unknown>) => void>();
  let ready: (v: Record<string, unknown>) => void = () => undefined;
  const readyP = new Promise<Record<string, unknown>>((r) => (ready = r));
  createInterface({ input: child.stdout! }).on('line', (l) => {
    const m = JSON.parse(l) as Record<string, unknown>;
    if (m.ready) return ready(m);
    waiting.get(m.id as number)?.(m);
    waiting.delete(m.id as number);
  });
  const exited = new Promise<never>((_, rej) => child.once('exit', (c) => rej(new Error(`nacos double exited ${c}`))));
  const info = await Promise.race([readyP, exited]);
  let nextId = 1;
  return {
    child,
    httpAddress: String(info.httpAddress),
    call(op, a = {}) {
      const id = nextId++;
      return Promise.race([
        new Promise<Record<string, unknown>>((res, rej) => {
          waiting.set(id, (m) => (m.ok ? res(m) : rej(new Error(String(m.error)))));
          child.stdin!.write(`${JSON.stringify({ id, op, ...a })}\n`);
        }),
        exited,
      ]);
    },
    stop() {
      child.stdin!.end();
    },
  };
}
