// Writes held to the end of the event-loop turn (src/http1/turn-writes.ts):
// what a receiver gets, and that ending or destroying a socket in the same
// turn still behaves as it would without the hold.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import { holdToTurnEnd } from '../../../src/http1/turn-writes.js';

let server: net.Server;
let port = 0;
const accepted: net.Socket[] = [];

before(async () => {
  server = net.createServer((s) => accepted.push(s));
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  port = (server.address() as net.AddressInfo).port;
});

after(() => {
  for (const s of accepted) s.destroy();
  server.close();
});

/** A connected pair: the gateway's side (`near`) and what the peer reads. */
async function pair(): Promise<{ near: net.Socket; chunks: Buffer[]; closed: Promise<unknown> }> {
  const n = accepted.length;
  const peer = net.connect(port, '127.0.0.1');
  await once(peer, 'connect');
  while (accepted.length === n) await new Promise((r) => setImmediate(r));
  const chunks: Buffer[] = [];
  peer.on('data', (d: Buffer) => chunks.push(d));
  const closed = once(peer, 'close');
  return { near: accepted[accepted.length - 1]!, chunks, closed };
}

const settle = (ms = 50): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe('holdToTurnEnd', () => {
  it('writes the first message of a turn at once, and holds later ones to the end of the turn', async () => {
    const first = await pair();
    const { near, chunks } = await pair();
    await settle();
    holdToTurnEnd(first.near);
    first.near.write('first');
    assert.equal(first.near.writableLength, 0, 'the first message of a turn is not held');
    holdToTurnEnd(near);
    near.write('HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\n', 'latin1');
    near.write(Buffer.from('hello'));
    // Still this turn: the socket has buffered both writes, none went out.
    assert.equal(near.writableLength, 43);
    await settle();
    assert.equal(Buffer.concat(first.chunks).toString(), 'first');
    assert.equal(Buffer.concat(chunks).toString('latin1'), 'HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello');
    // One writev: the peer read both in one chunk.
    assert.equal(chunks.length, 1);
    first.near.destroy();
    near.destroy();
  });

  it('releases every socket held in a turn, each with its own bytes', async () => {
    const a = await pair();
    const b = await pair();
    const c = await pair();
    await settle();
    holdToTurnEnd(c.near);
    holdToTurnEnd(a.near);
    holdToTurnEnd(b.near);
    a.near.write('to a');
    b.near.write('to b');
    assert.equal(a.near.writableLength + b.near.writableLength, 8);
    await settle();
    assert.equal(Buffer.concat(a.chunks).toString(), 'to a');
    assert.equal(Buffer.concat(b.chunks).toString(), 'to b');
    for (const p of [a, b, c]) p.near.destroy();
  });

  it('delivers what was written before an end() in the same turn, then closes', async () => {
    const other = await pair();
    const { near, chunks, closed } = await pair();
    await settle();
    holdToTurnEnd(other.near);
    holdToTurnEnd(near);
    near.write('last words');
    near.end();
    await closed;
    assert.equal(Buffer.concat(chunks).toString(), 'last words');
    other.near.destroy();
  });

  it('a socket destroyed while held is released without an error', async () => {
    const other = await pair();
    const { near, closed } = await pair();
    await settle();
    const errors: Error[] = [];
    near.on('error', (e) => errors.push(e));
    holdToTurnEnd(other.near);
    holdToTurnEnd(near);
    near.write('never sent');
    near.destroy();
    await closed;
    await settle();
    assert.deepEqual(errors, []);
    other.near.destroy();
  });

  it('the next turn starts afresh: its first message goes out at once', async () => {
    const a = await pair();
    const { near, chunks } = await pair();
    await settle();
    holdToTurnEnd(a.near);
    holdToTurnEnd(near);
    near.write('one');
    await settle();
    holdToTurnEnd(near);
    near.write('two');
    assert.equal(near.writableLength, 0);
    await settle();
    assert.equal(Buffer.concat(chunks).toString(), 'onetwo');
    a.near.destroy();
    near.destroy();
  });
});
