// A real ZooKeeper (the Debian package's jar, run with the machine's Java) for
// tests: its own temp dir, a free port on 127.0.0.1, and stop/restart on the
// same port and dataDir so outage tests can take it away and bring it back
// with its data (and sessions) intact.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile, mkdir } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './upstream.js';

export { freePort };

const ZK_JAR = process.env.ZOOKEEPER_JAR ?? '/usr/share/java/zookeeper.jar';
const JAVA = process.env.JAVA ?? 'java';

// A test run that dies without its after() hooks must not leave Java behind.
const live = new Set<ChildProcess>();
process.once('exit', () => {
  for (const c of live) c.kill('SIGKILL');
});

export interface ZookeeperServer {
  /** "127.0.0.1:PORT" */
  readonly connectString: string;
  readonly port: number;
  readonly dir: string;
  /** Stop the server (SIGTERM, then SIGKILL); data stays for a restart. */
  stop(): Promise<void>;
  /** Start it again on the same port and dataDir. */
  restart(): Promise<void>;
  /** Freeze the server process (SIGSTOP): connections stay open, nothing answers. */
  pause(): void;
  /** Let a paused server run again (SIGCONT). */
  resume(): void;
  /** Stop and delete the temp dir. */
  destroy(): Promise<void>;
  readonly running: boolean;
}

/** Ask the server the `srvr` four-letter word; true when it answers as a serving node. */
function probe(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = connect({ host: '127.0.0.1', port });
    let data = '';
    const done = (ok: boolean) => {
      sock.destroy();
      resolve(ok);
    };
    sock.setTimeout(1000, () => done(false));
    sock.on('error', () => done(false));
    sock.on('connect', () => sock.write('srvr'));
    sock.on('data', (b) => (data += b.toString()));
    sock.on('end', () => done(/Mode: (standalone|leader|follower)/.test(data)));
  });
}

export async function startZookeeper(opts: { tickTime?: number; forceSync?: boolean } = {}): Promise<ZookeeperServer> {
  const dir = await mkdtemp(join(tmpdir(), 'meshgate-zk-'));
  const dataDir = join(dir, 'data');
  await mkdir(dataDir);
  const port = await freePort();
  const tick = opts.tickTime ?? 500;
  // min/max session timeouts are multiples of tickTime: allow short sessions for expiry tests.
  await writeFile(
    join(dir, 'zoo.cfg'),
    [
      `tickTime=${tick}`,
      `dataDir=${dataDir}`,
      `clientPort=${port}`,
      'clientPortAddress=127.0.0.1',
      'admin.enableServer=false',
      `minSessionTimeout=${tick * 2}`,
      'maxSessionTimeout=120000',
      '4lw.commands.whitelist=srvr,stat,ruok,cons',
      'maxClientCnxns=0',
      // Tests do not need every write fsynced; it only makes them slower on a busy disk.
      `forceSync=${opts.forceSync ? 'yes' : 'no'}`,
      '',
    ].join('\n'),
  );
  let child: ChildProcess | undefined;
  let output = '';

  async function start(): Promise<void> {
    output = '';
    child = spawn(
      JAVA,
      [
        '-Xmx256m',
        '-XX:+UseSerialGC',
        '-XX:TieredStopAtLevel=1',
        '-Dzookeeper.admin.enableServer=false',
        `-Dzookeeper.log.dir=${dir}`,
        '-cp',
        ZK_JAR,
        'org.apache.zookeeper.server.quorum.QuorumPeerMain',
        join(dir, 'zoo.cfg'),
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    const proc = child;
    live.add(proc);
    proc.once('exit', () => live.delete(proc));
    const keep = (b: Buffer) => {
      output = (output + b.toString()).slice(-4000);
    };
    proc.stdout!.on('data', keep);
    proc.stderr!.on('data', keep);
    const deadline = Date.now() + 30_000;
    while (Date.now() < deadline) {
      if (proc.exitCode !== null) throw new Error(`zookeeper exited with ${proc.exitCode}: ${output}`);
      if (await probe(port)) return;
      await new Promise((r) => setTimeout(r, 150));
    }
    proc.kill('SIGKILL');
    throw new Error(`zookeeper did not answer on ${port} within 30 s: ${output}`);
  }

  async function stop(): Promise<void> {
    const proc = child;
    child = undefined;
    if (!proc || proc.exitCode !== null || proc.signalCode) return;
    proc.kill('SIGCONT'); // a paused server cannot act on SIGTERM
    const exited = new Promise<void>((r) => proc.once('exit', () => r()));
    proc.kill('SIGTERM');
    const t = setTimeout(() => proc.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(t);
    // The port must be free before a restart binds it again.
    const deadline = Date.now() + 10_000;
    while (Date.now() < deadline && (await probe(port))) await new Promise((r) => setTimeout(r, 100));
  }

  await start();
  return {
    connectString: `127.0.0.1:${port}`,
    port,
    dir,
    get running() {
      return !!child && child.exitCode === null;
    },
    stop,
    restart: start,
    pause: () => void child?.kill('SIGSTOP'),
    resume: () => void child?.kill('SIGCONT'),
    async destroy() {
      await stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
