// A child process that holds many idle keep-alive HTTP/1.1 connections to a
// server, so the server's process can be measured without the clients' own
// sockets in its heap.
//
//   node idle-clients.mjs <port> <count> <host> [path]
//
// Each connection sends one GET and reads its answer, then stays open and
// silent. Prints `READY <open> <failed> <ms>` once every connection has its
// answer (or failed), `CLOSED <n>` whenever the server closes some, and
// exits when stdin closes or says `exit`.
import net from 'node:net';

const [port, count, host, path = '/idle'] = [Number(process.argv[2]), Number(process.argv[3]), process.argv[4] ?? 'idle.example', process.argv[5]];
const BATCH = 250;
const request = Buffer.from(`GET ${path} HTTP/1.1\r\nHost: ${host}\r\n\r\n`, 'latin1');
const sockets = [];
let failed = 0;
let closedByServer = 0;
const started = Date.now();

function one() {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    let text = '';
    let done = false;
    const finish = (ok) => {
      if (done) return;
      done = true;
      if (!ok) failed++;
      resolve();
    };
    s.setNoDelay(true);
    s.on('connect', () => s.write(request));
    s.on('data', (d) => {
      if (done) return;
      text += d.toString('latin1');
      const end = text.indexOf('\r\n\r\n');
      if (end < 0) return;
      const m = /\r\ncontent-length:\s*(\d+)/i.exec(text.slice(0, end));
      if (m && text.length >= end + 4 + Number(m[1])) finish(/^HTTP\/1\.1 200 /.test(text));
    });
    s.on('error', () => finish(false));
    s.on('close', () => {
      if (done) closedByServer++;
      finish(false);
    });
    sockets.push(s);
  });
}

for (let i = 0; i < count; i += BATCH) {
  const batch = [];
  for (let j = i; j < Math.min(count, i + BATCH); j++) batch.push(one());
  await Promise.all(batch);
}
const open = sockets.filter((s) => !s.destroyed).length;
process.stdout.write(`READY ${open} ${failed} ${Date.now() - started}\n`);

let reported = 0;
setInterval(() => {
  if (closedByServer !== reported) {
    reported = closedByServer;
    process.stdout.write(`CLOSED ${closedByServer}\n`);
  }
}, 200);

process.stdin.on('data', (d) => {
  if (String(d).includes('exit')) process.exit(0);
});
process.stdin.on('end', () => process.exit(0));
