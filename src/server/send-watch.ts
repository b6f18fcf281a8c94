// Send timeout: a connection with bytes waiting for the kernel that has not
// taken any of them for `listeners[].sendTimeoutMs` is closed.
//
// A client that stops reading (the "slow read" attack: pipelined requests for
// large answers, HTTP/2 PINGs, one big download it never takes) otherwise
// keeps its connection, the kernel's send buffer for it and whatever the
// gateway queued behind that, for as long as it likes: keep-alive and idle
// timers do not run while an answer is being written, and a client can do
// this to every connection the listener allows. nginx's send_timeout is the
// same rule (60 s by default).
//
// HTTP/2 has a second way to stop reading: never granting flow-control
// window. The answer then waits in its stream, not in the socket. So an open
// HTTP/2 stream with answer bytes queued is reset with CANCEL once, for the
// same time, neither its queue went down nor its connection sent a byte.
//
// The measure is the TCP handle's write queue: the bytes libuv holds because
// the kernel would not take them. Node writes one request at a time to a
// socket, and TLS and HTTP/2 write through that same handle, so while the
// client reads nothing the queue keeps its size, and every write the kernel
// takes changes it. A slow but steady reader therefore never trips it.
import http2 from 'node:http2';
import type net from 'node:net';
import { resetStream } from './h2-guard.js';

interface Stall {
  /** The write queue's size when it was first seen not to move. */
  queued: number;
  since: number;
}

type WithHandle = { _handle?: { writeQueueSize?: number } | null };

/** The bytes libuv holds for a socket's kernel buffer (0 for a socket without a handle). */
function kernelBacklog(socket: net.Socket): number {
  return (socket as unknown as WithHandle)._handle?.writeQueueSize ?? 0;
}

export class SendWatch {
  private readonly stalls = new WeakMap<net.Socket, Stall>();

  /** Looks at each socket once: a socket whose write queue has not moved for `timeoutMs` is destroyed. */
  sweep(sockets: Iterable<net.Socket>, timeoutMs: number, now: number): void {
    for (const s of sockets) {
      const queued = kernelBacklog(s);
      if (queued === 0) {
        this.stalls.delete(s);
        continue;
      }
      const st = this.stalls.get(s);
      if (st === undefined || st.queued !== queued) this.stalls.set(s, { queued, since: now });
      else if (now - st.since >= timeoutMs) {
        this.stalls.delete(s);
        s.destroy();
      }
    }
  }
}

const { NGHTTP2_CANCEL } = http2.constants;

/** What the stream watch reads of an HTTP/2 connection (a SessionGuard). */
export interface StreamOwner {
  readonly socket: net.Socket;
  streams(): Iterable<http2.ServerHttp2Stream>;
}

interface StreamStall extends Stall {
  /** The connection's bytes written at the mark. */
  written: number;
}

/**
 * The HTTP/2 side of the send timeout: a stream with answer bytes queued is
 * reset when, for the whole time, neither its queue went down nor its
 * connection wrote a byte. node:http2 hands a stream's queued writes to
 * nghttp2 in batches (one callback for all the writes buffered behind the
 * first), so a stream's own queue can stand still for a while as the client
 * takes its bytes: the connection's bytes tell those apart.
 */
export class StreamSendWatch {
  private readonly stalls = new WeakMap<http2.ServerHttp2Stream, StreamStall>();

  sweep(owner: StreamOwner, timeoutMs: number, now: number): void {
    let written = -1;
    for (const st of owner.streams()) {
      const queued = st.writableLength;
      if (queued === 0) {
        this.stalls.delete(st);
        continue;
      }
      if (written < 0) written = owner.socket.bytesWritten ?? 0;
      const p = this.stalls.get(st);
      // Bytes queued while none leave are no progress: the mark keeps its time.
      if (p === undefined || queued < p.queued || written !== p.written) this.stalls.set(st, { queued, written, since: now });
      else if (now - p.since >= timeoutMs) {
        this.stalls.delete(st);
        resetStream(st, NGHTTP2_CANCEL);
      }
    }
  }
}

/** How often a listener sweeps for a given timeout: four times per timeout, between 100 ms and 1 s. */
export function sweepEveryMs(timeoutMs: number): number {
  return Math.min(1_000, Math.max(100, Math.floor(timeoutMs / 4)));
}
