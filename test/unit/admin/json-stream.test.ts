import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { test } from 'node:test';
import { describeInParts, writeJson, writeJsonArray, type JsonSink } from '../../../src/admin/json-stream.js';

/** A response that records what it is given; write() answers `accept(n)` for the n-th write. */
class Sink extends EventEmitter implements JsonSink {
  destroyed = false;
  status = 0;
  headers: Record<string, string> = {};
  chunks: string[] = [];
  ended = false;
  constructor(private readonly accept: (n: number) => boolean = () => true) {
    super();
  }
  writeHead(status: number, headers: Record<string, string>): this {
    this.status = status;
    this.headers = headers;
    return this;
  }
  write(chunk: string): boolean {
    this.chunks.push(chunk);
    return this.accept(this.chunks.length);
  }
  end(chunk?: string): this {
    if (chunk !== undefined) this.chunks.push(chunk);
    this.ended = true;
    return this;
  }
  get text(): string {
    return this.chunks.join('');
  }
}

/** Counts event-loop turns (a setImmediate chain) until stop(). */
function countTurns(): { readonly turns: number; stop(): void } {
  let turns = 0;
  let running = true;
  const tick = (): void => {
    turns++;
    if (running) setImmediate(tick);
  };
  setImmediate(tick);
  return {
    get turns() {
      return turns;
    },
    stop: () => void (running = false),
  };
}

const service = (i: number) => ({ name: `svc-${i}`, version: i, routed: i % 2 === 0, endpoints: [{ host: '10.0.0.1', port: 8000 + i, metadata: { zone: 'a\nb' } }], breakers: undefined });

test('the streamed text is what JSON.stringify(items, null, 2) gives, in one slice or many', async () => {
  for (const n of [0, 1, 2, 300]) {
    const items = Array.from({ length: n }, (_, i) => service(i));
    for (const slice of [1, 200, 1 << 20]) {
      const sink = new Sink();
      await writeJsonArray(sink, 200, items, (x) => x, slice);
      assert.equal(sink.text, JSON.stringify(items, null, 2), `${n} items, slices of ${slice}`);
      assert.equal(sink.ended, true);
      assert.equal(sink.status, 200);
      assert.equal(sink.headers['content-type'], 'application/json');
    }
  }
});

test('a large answer lets the event loop turn between slices', async () => {
  const keys = Array.from({ length: 2000 }, (_, i) => i);
  const loop = countTurns();
  const sink = new Sink();
  await writeJsonArray(sink, 200, keys, service, 4096);
  loop.stop();
  assert.ok(sink.chunks.length > 20, `${sink.chunks.length} slices`);
  assert.ok(loop.turns >= sink.chunks.length - 1, `the event loop turned ${loop.turns} times during ${sink.chunks.length} slices`);
});

test('a full socket is waited for (drain), and a client that left stops the answer', async () => {
  const keys = Array.from({ length: 500 }, (_, i) => i);
  // The socket refuses more after the second slice until it drains.
  const sink = new Sink((n) => n !== 2);
  const done = writeJsonArray(sink, 200, keys, service, 1024);
  await new Promise((r) => setTimeout(r, 50));
  assert.equal(sink.chunks.length, 2, 'nothing written while the socket is full');
  sink.emit('drain');
  await done;
  assert.equal(sink.text, JSON.stringify(keys.map(service), null, 2));

  // A slow client: every write fills the socket. Each wait must leave no listener behind.
  const slow = new Sink(() => {
    setImmediate(() => slow.emit('drain'));
    return false;
  });
  await writeJsonArray(slow, 200, keys, service, 1024);
  assert.ok(slow.chunks.length > 20, `${slow.chunks.length} slices`);
  assert.equal(slow.text, JSON.stringify(keys.map(service), null, 2));
  assert.deepEqual([slow.listenerCount('drain'), slow.listenerCount('close')], [0, 0], 'listeners left on the response');

  const gone = new Sink((n) => {
    if (n === 3) gone.destroyed = true;
    return true;
  });
  let described = 0;
  await writeJsonArray(gone, 200, keys, (k) => (described++, service(k)), 1024);
  assert.equal(gone.ended, false);
  assert.equal(gone.chunks.length, 3);
  assert.ok(described < keys.length, `described ${described} of ${keys.length} for a client that left`);
});

// ---------- writeJson: any value, its large parts walked ----------

test('writeJson gives JSON.stringify(value, null, 2) for nested shapes, at every depth walked and every slice size', async () => {
  const values: unknown[] = [
    { scope: 'cluster', pid: 7, workers: [{ pid: 1, services: Array.from({ length: 50 }, (_, i) => service(i)) }, { pid: 2, services: [] }] },
    { a: undefined, b: null, c: [undefined, () => 1, 'x', 1.5, true], d: {}, e: [], f: { g: { h: [[], [{}], [1, [2, [3]]]] } }, when: new Date(0), fn: () => 2 },
    [],
    {},
    'text with "quotes" and \n newline',
    [null, { x: [1, 2, { y: 'z' }] }],
  ];
  for (const v of values) {
    for (const expand of [0, 1, 2, 4, 10]) {
      for (const slice of [1, 64, 1 << 20]) {
        const sink = new Sink();
        await writeJson(sink, 200, v, expand, slice);
        assert.equal(sink.text, JSON.stringify(v, null, 2), `expand ${expand}, slices of ${slice}: ${JSON.stringify(v).slice(0, 60)}`);
        assert.equal(sink.ended, true);
      }
    }
  }
});

test('writeJson lets the event loop turn between slices and stops when the client goes', async () => {
  const value = { workers: [{ pid: 1, services: Array.from({ length: 3000 }, (_, i) => service(i)) }] };
  const loop = countTurns();
  const sink = new Sink();
  await writeJson(sink, 200, value, 4, 16 * 1024);
  loop.stop();
  assert.ok(sink.chunks.length > 20, `written in slices (${sink.chunks.length})`);
  assert.ok(loop.turns >= sink.chunks.length - 2, `the event loop turned between slices (${loop.turns} turns, ${sink.chunks.length} slices)`);
  assert.equal(sink.text, JSON.stringify(value, null, 2));

  const gone = new Sink((n) => {
    if (n === 3) gone.destroyed = true;
    return true;
  });
  await writeJson(gone, 200, value, 4, 16 * 1024);
  assert.equal(gone.chunks.length, 3, 'nothing is written after the client left');
  assert.equal(gone.ended, false);
});

// ---------- describeInParts: a worker's view a part at a time ----------

test('describeInParts hands over every item once, in order, a part at a time with a turn between parts', async () => {
  const keys = Array.from({ length: 5000 }, (_, i) => i);
  const parts: Array<{ items: unknown[]; last: boolean }> = [];
  const loop = countTurns();
  // A slow describe (about 20 us each): a 4 ms budget makes a few hundred parts... at least several.
  const slow = (k: number): unknown => {
    const until = performance.now() + 0.02;
    while (performance.now() < until);
    return service(k);
  };
  let awaited = 0;
  await describeInParts(keys, slow, async (items, last) => {
    parts.push({ items, last });
    // The next part waits for this one to be sent.
    await new Promise((r) => setTimeout(r, 1));
    awaited++;
  });
  loop.stop();
  assert.ok(parts.length >= 10, `several parts (${parts.length})`);
  assert.equal(awaited, parts.length);
  assert.deepEqual(
    parts.map((p) => p.last),
    parts.map((_, i) => i === parts.length - 1),
    'only the final part is marked last',
  );
  assert.deepEqual(parts.flatMap((p) => p.items), keys.map(service));
  assert.ok(loop.turns >= parts.length - 1, `a turn between parts (${loop.turns} turns, ${parts.length} parts)`);

  const empty: Array<{ items: unknown[]; last: boolean }> = [];
  await describeInParts([], service, (items, last) => void empty.push({ items, last }));
  assert.deepEqual(empty, [{ items: [], last: true }], 'no items: one empty final part');
});
