// Heap figures of another Node process, taken through its inspector (the
// process is started with --inspect=127.0.0.1:PORT): a full GC first, then
// process.memoryUsage() evaluated there. This reads a real gateway process
// (as users run it) as steadily as --expose-gc does in process.
import WebSocket from 'ws';

export interface RemoteMemory {
  heapUsed: number;
  heapTotal: number;
  rss: number;
  external: number;
  arrayBuffers: number;
}

export async function remoteMemory(inspectPort: number): Promise<RemoteMemory> {
  const list = (await (await fetch(`http://127.0.0.1:${inspectPort}/json/list`)).json()) as Array<{ webSocketDebuggerUrl: string }>;
  const ws = new WebSocket(list[0]!.webSocketDebuggerUrl);
  await new Promise<void>((res, rej) => {
    ws.once('open', () => res());
    ws.once('error', rej);
  });
  let id = 0;
  const call = (method: string, params: Record<string, unknown> = {}): Promise<{ result?: { result?: { value?: unknown } } }> =>
    new Promise((res) => {
      const my = ++id;
      const on = (d: WebSocket.RawData): void => {
        const m = JSON.parse(d.toString()) as { id?: number };
        if (m.id === my) {
          ws.off('message', on);
          res(m as never);
        }
      };
      ws.on('message', on);
      ws.send(JSON.stringify({ id: my, method, params }));
    });
  try {
    // Twice: the first pass can leave weak and finalised objects for the next.
    await call('HeapProfiler.collectGarbage');
    await call('HeapProfiler.collectGarbage');
    const r = await call('Runtime.evaluate', { expression: 'JSON.stringify(process.memoryUsage())', returnByValue: true });
    return JSON.parse(String(r.result?.result?.value)) as RemoteMemory;
  } finally {
    ws.close();
  }
}
