// A minimal authoritative DNS server over UDP for tests: answers A queries
// from a table the test controls; names not in the table get NXDOMAIN;
// `silent` makes it drop queries (an unreachable resolver).
import dgram from 'node:dgram';
import type { AddressInfo } from 'node:net';

export interface TestDns {
  address: string; // 127.0.0.1:PORT
  records: Map<string, string[]>;
  silent: boolean;
  close(): Promise<void>;
}

function readName(buf: Buffer, off: number): { name: string; end: number } {
  const labels: string[] = [];
  let i = off;
  while (buf[i]! !== 0) {
    const len = buf[i]!;
    labels.push(buf.subarray(i + 1, i + 1 + len).toString('ascii'));
    i += 1 + len;
  }
  return { name: labels.join('.').toLowerCase(), end: i + 1 };
}

export async function startDns(): Promise<TestDns> {
  const sock = dgram.createSocket('udp4');
  const state: TestDns = { address: '', records: new Map(), silent: false, close: async () => void sock.close() };
  sock.on('message', (msg, rinfo) => {
    if (state.silent || msg.length < 12) return;
    const { name, end } = readName(msg, 12);
    const qtype = msg.readUInt16BE(end);
    const question = msg.subarray(12, end + 4);
    const ips = state.records.get(name);
    const answers = qtype === 1 && ips ? ips : [];
    const header = Buffer.alloc(12);
    msg.copy(header, 0, 0, 2); // id
    header.writeUInt16BE(0x8400 | (msg.readUInt16BE(2) & 0x0100) | (ips ? 0 : 3), 2); // response, AA, RD copied, NXDOMAIN when unknown
    header.writeUInt16BE(1, 4);
    header.writeUInt16BE(answers.length, 6);
    const rrs = answers.map((ip) => {
      const rr = Buffer.alloc(16);
      rr.writeUInt16BE(0xc00c, 0); // pointer to the question name
      rr.writeUInt16BE(1, 2); // A
      rr.writeUInt16BE(1, 4); // IN
      rr.writeUInt32BE(5, 6); // TTL
      rr.writeUInt16BE(4, 10);
      ip.split('.').forEach((o, k) => rr.writeUInt8(Number(o), 12 + k));
      return rr;
    });
    sock.send(Buffer.concat([header, question, ...rrs]), rinfo.port, rinfo.address);
  });
  await new Promise<void>((r) => sock.bind(0, '127.0.0.1', () => r()));
  state.address = `127.0.0.1:${(sock.address() as AddressInfo).port}`;
  return state;
}
