// Counts kept once for a whole --workers cluster: workers ask the primary over
// the cluster IPC channel and the primary answers from its own state (cc
// windows, flow_control buckets). The asks of one event-loop turn leave in one
// message and their answers come back in one, so under load a worker pays one
// IPC write and one read per batch, not per request.
import cluster, { type Worker } from 'node:cluster';

/** True in a worker of a --workers cluster (counts belong to the primary). */
export function inClusterWorker(): boolean {
  return cluster.isWorker && process.env.MESHGATE_ROLE === 'worker' && typeof process.send === 'function';
}

interface Batch {
  t: 'pc';
  /** [id, kind, payload] */
  b: Array<[number, string, unknown]>;
}
interface Answers {
  t: 'pc-r';
  /** [id, answer] */
  b: Array<[number, unknown]>;
}

/** How long a worker waits for the primary before the caller decides alone. */
export const PRIMARY_TIMEOUT_MS = 1000;

const pending = new Map<number, (a: unknown) => void>();
let queue: Batch['b'] = [];
let nextId = 1;
let listening = false;
let flushQueued = false;

function flush(): void {
  flushQueued = false;
  const b = queue;
  queue = [];
  if (b.length === 0) return;
  const m: Batch = { t: 'pc', b };
  const fail = (): void => {
    for (const [id] of b) pending.get(id)?.(undefined);
  };
  try {
    process.send!(m, undefined, undefined, (err: Error | null) => {
      if (err) fail();
    });
  } catch {
    fail();
  }
}

/** Worker side: the primary's answer, or undefined when it does not answer in time. */
export function askPrimary<A>(kind: string, payload: unknown): Promise<A | undefined> {
  if (!listening) {
    listening = true;
    process.on('message', (m: Answers) => {
      if (m && m.t === 'pc-r') for (const [id, a] of m.b) pending.get(id)?.(a);
    });
  }
  const id = nextId++;
  return new Promise((resolve) => {
    const timer = setTimeout(() => done(undefined), PRIMARY_TIMEOUT_MS);
    timer.unref();
    const done = (a: unknown): void => {
      clearTimeout(timer);
      pending.delete(id);
      resolve(a as A | undefined);
    };
    pending.set(id, done);
    queue.push([id, kind, payload]);
    if (!flushQueued) {
      flushQueued = true;
      setImmediate(flush);
    }
  });
}

const handlers = new Map<string, (payload: unknown) => unknown>();

/** Primary side: what answers asks of a kind (registered once per kind, at import). */
export function onPrimaryAsk(kind: string, handler: (payload: unknown) => unknown): void {
  handlers.set(kind, handler);
}

/** Primary side: answer a worker's asks (called once per forked worker). */
export function servePrimaryChannel(worker: Worker): void {
  worker.on('message', (m: Batch) => {
    if (!m || m.t !== 'pc') return;
    const out: Answers = { t: 'pc-r', b: [] };
    for (const [id, kind, payload] of m.b) {
      const h = handlers.get(kind);
      let a: unknown;
      try {
        a = h ? h(payload) : undefined;
      } catch {
        a = undefined;
      }
      out.b.push([id, a]);
    }
    if (worker.isConnected()) worker.send(out);
  });
}
