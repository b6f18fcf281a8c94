// Child process for the flow-control test: a grpc-js server that streams as
// fast as HTTP/2 flow control lets it, and a grpc-js client that reads slowly.
// Runs outside the test process so that process's memory is the gateway's.
// Protocol on stdio: prints "PORT <n>", reads "GO <host:port> <count> <size>", prints "DONE <messages> <bytes>".
import { createInterface } from 'node:readline';
import { echoClient, startEchoServer } from './helpers.js';

const server = await startEchoServer('stream-peer');
process.stdout.write(`PORT ${server.port}\n`);
const rl = createInterface({ input: process.stdin });
rl.on('line', (line) => {
  const [cmd, target, count, size] = line.trim().split(' ');
  if (cmd !== 'GO') return;
  const client = echoClient(target!);
  const call = client.serverStream({ count: Number(count), size: Number(size) });
  let messages = 0;
  let bytes = 0;
  call.on('data', (m: { pad: string }) => {
    messages++;
    bytes += m.pad.length;
    // A slow reader: a pause after every few messages.
    if (messages % 4 === 0) {
      call.pause();
      setTimeout(() => call.resume(), 2);
    }
  });
  call.on('error', (e: Error) => {
    process.stdout.write(`ERROR ${e.message}\n`);
  });
  call.on('end', () => {
    process.stdout.write(`DONE ${messages} ${bytes}\n`);
    client.close();
  });
});
rl.on('close', () => {
  void server.close().then(() => process.exit(0));
});
