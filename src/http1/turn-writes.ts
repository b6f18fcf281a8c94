// HTTP/1.1 messages are written at the end of the event-loop turn that made
// them, not one by one as each is ready.
//
// In one turn the gateway reads every socket that has data, and each request
// read may make an upstream request head, each upstream response a response
// head. Written at once, each write lands on its receiver (the client, the
// upstream) at a different moment of the turn, and on a busy proxy most of
// them find the receiver asleep: the write pays for waking it (on a VM, an
// interrupt between CPUs). Held to the end of the turn, a turn's writes go out
// together: the same syscalls, one write per socket, but a receiver that
// reads several of them wakes once. The first message of a turn is not held,
// so a quiet gateway (one message a turn) adds no wait; under load a held
// message waits at most for the rest of its turn.
import type { Socket } from 'node:net';

let held: Socket[] = [];
/** A message was written in this turn (the first goes out at once; see holdToTurnEnd). */
let busy = false;

function release(): void {
  busy = false;
  const list = held;
  held = [];
  for (let i = 0; i < list.length; i++) list[i]!.uncork();
}

/**
 * Called before a message is written to `socket`. The first message of a
 * turn goes out at once: on a quiet gateway a turn has one, and it waits for
 * nothing. Later ones in the same turn are held (cork, and uncork from
 * setImmediate, which runs once the turn's I/O callbacks are done).
 * `end()` and `destroy()` in between are unaffected: end() uncorks; a
 * destroyed socket's uncork does nothing.
 */
export function holdToTurnEnd(socket: Socket): void {
  if (!busy) {
    busy = true;
    setImmediate(release);
    return;
  }
  socket.cork();
  held.push(socket);
}
