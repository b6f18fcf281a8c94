import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { test } from 'node:test';
import { writeJsonArray, type JsonSink } from '../../../src/admin/json-stream.js';

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
  let turns = 0;
  let running = true;
  const tick = (): void => {
    turns++;
    if (running) setImmediate(tick);
  };
  setImmediate(tick);
  const sink = new Sink();
  await writeJsonArray(sink, 200, keys, service, 4096);
  running = false;
  assert.ok(sink.chunks.length > 20, `${sink.chunks.length} slices`);
  assert.ok(turns >= sink.chunks.length - 1, `the event loop turned ${turns} times during ${sink.chunks.length} slices`);
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
