// Upstream TLS benchmark: what HTTPS to the upstream costs meshgate, beside nginx doing the same.
//
//   npx tsx test/bench/upstream-tls.ts [--rounds 3] [--seconds 8] [--warmup 3] [--connections 32]
//                                      [--no-build] [--dist DIR] [--no-pin] [--out FILE]
//
// --dist DIR runs DIR/src/cli.js instead of dist/src/cli.js (a build made elsewhere; implies --no-build).
//
// One upstream, nginx from Debian (/usr/sbin/nginx, 1 worker), with two server
// blocks answering `return 200 "ok"`: a plain one and a TLS one (certificates
// from test/helpers/tls-certs.ts, TLS 1.2 and 1.3, session tickets and a
// session cache). The TLS block logs the first request of every connection with
// $ssl_session_reused, which gives the handshakes per second (full and resumed).
// Targets, each measured with wrk -t1 -c<connections> in plain HTTP:
//   - meshgate-plain: `node NODE_FLAGS dist/src/cli.js start --workers 1`,
//     access log off, to the plain block
//   - meshgate-tls:   the same with `tls: { sni: localhost, ca }` to the TLS block
//   - nginx-plain:    nginx (1 worker) proxy_pass http:// with upstream keepalive 64
//   - nginx-tls:      the same to https:// with proxy_ssl_verify on,
//                     proxy_ssl_session_reuse on (nginx's pooling: keepalive
//                     connections, HTTP/1.1, like meshgate's)
// Each round measures every target in turn, alternating the order between
// rounds; the table shows medians over rounds: req/s, the TLS/plain ratio of
// the same proxy, p50, p99, the p99 TLS adds, CPU µs per request of the proxy
// process (and its children: nginx's worker) from /proc, and TLS handshakes per
// second at the upstream during the measured window (after the warm-up).
// With 2+ CPUs the proxies run on CPU 1, wrk and the upstream on CPU 0 (taskset)
// unless --no-pin. Not part of `npm test`.
import { spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { makeTestCerts, type TestCerts } from '../helpers/tls-certs.js';
import { freePort } from '../helpers/upstream.js';
import { argv, flag, optString, runOptions } from './lib/args.js';
import { cpuSeconds, NODE_FLAGS, ROOT, runProcess as run, startProcess as start, stopAll, waitForPort } from './lib/procs.js';
import { parseWrk, type MeasuredRun } from './lib/wrk.js';
import { report } from './lib/report.js';

const NGINX = '/usr/sbin/nginx';
const distDir = optString('dist');
const o = runOptions();

type Name = 'meshgate-plain' | 'meshgate-tls' | 'nginx-plain' | 'nginx-tls';

interface Target {
  name: Name;
  port: number;
  child: ChildProcess;
}

interface Result extends MeasuredRun {
  /** handshakes per second seen by the TLS upstream during the measured window */
  fullPerSec: number;
  resumedPerSec: number;
}

/** The start of an nginx config for one worker in `dir`, inside `http {`. */
function nginxHead(dir: string): string {
  return `worker_processes 1;
daemon off;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections 4096; }
http {
${nginxTemps(dir)}
  access_log off;
  keepalive_requests 1000000;`;
}

function nginxTemps(dir: string): string {
  for (const d of ['client_body', 'proxy_temp', 'fastcgi_temp', 'uwsgi_temp', 'scgi_temp']) mkdirSync(join(dir, d), { recursive: true });
  return `  client_body_temp_path ${dir}/client_body;
  proxy_temp_path ${dir}/proxy_temp;
  fastcgi_temp_path ${dir}/fastcgi_temp;
  uwsgi_temp_path ${dir}/uwsgi_temp;
  scgi_temp_path ${dir}/scgi_temp;`;
}

/** The upstream: a plain and a TLS server block answering "ok"; the TLS block logs new connections. */
function upstreamConf(dir: string, plain: number, tls: number, certs: TestCerts, handshakeLog: string): string {
  return `${nginxHead(dir)}
  keepalive_timeout 120s;
  map $connection_requests $first_request { 1 1; default 0; }
  log_format handshake '$ssl_session_reused $ssl_protocol $connection';
  server {
    listen 127.0.0.1:${plain};
    location / { return 200 "ok"; }
  }
  server {
    listen 127.0.0.1:${tls} ssl;
    ssl_certificate ${certs.server.cert};
    ssl_certificate_key ${certs.server.key};
    ssl_protocols TLSv1.2 TLSv1.3;
    ssl_session_cache shared:up:10m;
    ssl_session_timeout 1h;
    ssl_session_tickets on;
    access_log ${handshakeLog} handshake if=$first_request;
    location / { return 200 "ok"; }
  }
}
`;
}

/** nginx as the proxy: proxy_pass to the plain or TLS upstream with keep-alive pooling. */
function proxyConf(dir: string, port: number, upstreamPort: number, tls: boolean, certs: TestCerts): string {
  const ssl = tls
    ? `
      proxy_ssl_server_name on;
      proxy_ssl_name localhost;
      proxy_ssl_verify on;
      proxy_ssl_verify_depth 2;
      proxy_ssl_trusted_certificate ${certs.ca.cert};
      proxy_ssl_session_reuse on;
      proxy_ssl_protocols TLSv1.2 TLSv1.3;`
    : '';
  return `${nginxHead(dir)}
  upstream up {
    server 127.0.0.1:${upstreamPort};
    keepalive 64;
    keepalive_requests 1000000;
    keepalive_timeout 120s;
  }
  server {
    listen 127.0.0.1:${port};
    location / {
      proxy_pass ${tls ? 'https' : 'http'}://up;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $host;
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;${ssl}
    }
  }
}
`;
}

function gatewayConfig(port: number, admin: number, upstreamPort: number, tls: boolean, certs: TestCerts): string {
  return `listeners: [{ name: public, address: "127.0.0.1:${port}" }]
admin: { address: "127.0.0.1:${admin}" }
log: { level: warn, access: false }
registries: [{ name: up, type: static, endpoints: ["127.0.0.1:${upstreamPort}"] }]
services:
  up.static:
    protocol: http${tls ? `\n    tls: { sni: localhost, ca: "${certs.ca.cert}" }` : ''}
routes:
  - { name: all, match: { path: { prefix: / } }, backends: [{ service: up.static }] }
`;
}

/** Lines of the handshake log: "r TLSv1.3 N" for a resumed session, ". TLSv1.3 N" for a full handshake. */
function handshakes(file: string): { full: number; resumed: number } {
  if (!existsSync(file)) return { full: 0, resumed: 0 };
  let full = 0;
  let resumed = 0;
  for (const l of readFileSync(file, 'utf8').split('\n')) {
    if (!l) continue;
    if (l.startsWith('r ')) resumed++;
    else full++;
  }
  return { full, resumed };
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length === 0 ? NaN : s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};
const f0 = (n: number): string => (Number.isFinite(n) ? Math.round(n).toLocaleString('en-US') : 'n/a');
const f1 = (n: number): string => (Number.isFinite(n) ? n.toFixed(1) : 'n/a');
const f2 = (n: number): string => (Number.isFinite(n) ? n.toFixed(2) : 'n/a');

async function measure(t: Target, cpu: number | undefined, handshakeLog: string): Promise<Result> {
  const url = `http://127.0.0.1:${t.port}/`;
  await run('wrk', ['-t1', `-c${o.connections}`, `-d${o.warmup}s`, url], cpu);
  const h0 = handshakes(handshakeLog);
  const c0 = cpuSeconds(t.child.pid!, true);
  const t0 = performance.now();
  const r = parseWrk(await run('wrk', ['-t1', `-c${o.connections}`, `-d${o.seconds}s`, '--latency', url], cpu));
  const secs = (performance.now() - t0) / 1000;
  const c1 = cpuSeconds(t.child.pid!, true);
  const h1 = handshakes(handshakeLog);
  const served = r.rps * secs;
  return { ...r, cpuUsPerReq: ((c1 - c0) * 1e6) / served, fullPerSec: (h1.full - h0.full) / secs, resumedPerSec: (h1.resumed - h0.resumed) / secs };
}

async function main(): Promise<void> {
  if (!existsSync(NGINX)) throw new Error(`nginx not found at ${NGINX} (apt-get install nginx)`);
  if (!flag('no-build') && !distDir) {
    const b = spawnSync('npm', ['run', 'build'], { cwd: ROOT, stdio: 'inherit' });
    if (b.status !== 0) throw new Error('npm run build failed');
  }
  const certs = makeTestCerts();
  const dir = mkdtempSync(join(tmpdir(), 'meshgate-tls-bench-'));
  try {
    const genCpu = o.pin ? 0 : undefined;
    const proxyCpu = o.pin ? 1 : undefined;

    // the upstream (shares CPU 0 with wrk: it answers from a constant, far faster than any proxy)
    const plainPort = await freePort();
    const tlsPort = await freePort();
    const upDir = join(dir, 'upstream');
    mkdirSync(upDir);
    const handshakeLog = join(upDir, 'handshakes.log');
    writeFileSync(join(upDir, 'nginx.conf'), upstreamConf(upDir, plainPort, tlsPort, certs, handshakeLog));
    start('upstream nginx', NGINX, ['-p', upDir, '-e', join(upDir, 'error.log'), '-c', join(upDir, 'nginx.conf')], genCpu);
    await waitForPort(plainPort, 'upstream (plain)');
    await waitForPort(tlsPort, 'upstream (tls)');

    const targets: Target[] = [];
    for (const tls of [false, true]) {
      const port = await freePort();
      const file = join(dir, `meshgate-${tls ? 'tls' : 'plain'}.yaml`);
      writeFileSync(file, gatewayConfig(port, await freePort(), tls ? tlsPort : plainPort, tls, certs));
      const name: Name = tls ? 'meshgate-tls' : 'meshgate-plain';
      const child = start(name, process.execPath, [...NODE_FLAGS, join(distDir ?? join(ROOT, 'dist'), 'src', 'cli.js'), 'start', '--config', file, '--workers', '1'], proxyCpu);
      await waitForPort(port, name);
      targets.push({ name, port, child });
    }
    for (const tls of [false, true]) {
      const port = await freePort();
      const name: Name = tls ? 'nginx-tls' : 'nginx-plain';
      const d = join(dir, name);
      mkdirSync(d);
      writeFileSync(join(d, 'nginx.conf'), proxyConf(d, port, tls ? tlsPort : plainPort, tls, certs));
      const child = start(name, NGINX, ['-p', d, '-e', join(d, 'error.log'), '-c', join(d, 'nginx.conf')], proxyCpu);
      await waitForPort(port, name);
      targets.push({ name, port, child });
    }

    // every target answers 200 before measuring (a TLS misconfiguration shows here, not as a fast 502 benchmark)
    for (const t of targets) {
      const r = await fetch(`http://127.0.0.1:${t.port}/`);
      const body = await r.text();
      if (r.status !== 200 || body !== 'ok') throw new Error(`${t.name}: ${r.status} ${body.slice(0, 300)}`);
    }

    const res = new Map<Name, Result[]>(targets.map((t) => [t.name, []]));
    for (let round = 0; round < o.rounds; round++) {
      const order = round % 2 === 0 ? targets : [...targets].reverse();
      for (const t of order) {
        const r = await measure(t, genCpu, handshakeLog);
        if (r.errors > 0) throw new Error(`${t.name}: ${r.errors} errors or non-2xx answers`);
        res.get(t.name)!.push(r);
        process.stderr.write(`round ${round + 1} ${t.name}: ${f0(r.rps)} req/s p99 ${f2(r.p99)} ms ${f1(r.cpuUsPerReq)} µs/req handshakes/s full ${f1(r.fullPerSec)} resumed ${f1(r.resumedPerSec)}\n`);
      }
    }

    const lines: string[] = [];
    const say = (s: string): void => {
      lines.push(s);
      process.stdout.write(`${s}\n`);
    };
    const ver = spawnSync(NGINX, ['-v'], { encoding: 'utf8' }).stderr.trim();
    say(`# Upstream TLS benchmark (${new Date().toISOString()})`);
    say('');
    say(`meshgate --workers 1 (access log off) and ${ver} (1 worker) in front of nginx \`return 200 "ok"\`, plain and TLS (EC P-256 certificate, TLS 1.2/1.3).`);
    say(`wrk -t1 -c${o.connections}, ${o.warmup} s warm-up + ${o.seconds} s measured per run, ${o.rounds} rounds, order alternating (medians)${o.pin ? '; proxies pinned to CPU 1, wrk and the upstream to CPU 0' : ''}. Node ${process.version}.`);
    say('');
    say('| proxy | upstream | req/s | ratio TLS/plain | p50 ms | p99 ms | added p99 ms | CPU µs/req | full handshakes/s | resumed/s |');
    say('| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |');
    for (const proxy of ['meshgate', 'nginx'] as const) {
      const plain = res.get(`${proxy}-plain`)!;
      const tls = res.get(`${proxy}-tls`)!;
      const plainP99 = median(plain.map((r) => r.p99));
      const tlsP99 = median(tls.map((r) => r.p99));
      const ratios = tls.map((r, i) => r.rps / plain[i]!.rps);
      const row = (kind: string, rs: Result[], ratio: string, added: string, hs: boolean): string =>
        `| ${proxy} | ${kind} | ${f0(median(rs.map((r) => r.rps)))} | ${ratio} | ${f2(median(rs.map((r) => r.p50)))} | ${f2(median(rs.map((r) => r.p99)))} | ${added} | ${f1(median(rs.map((r) => r.cpuUsPerReq)))} | ${hs ? f1(median(rs.map((r) => r.fullPerSec))) : ''} | ${hs ? f1(median(rs.map((r) => r.resumedPerSec))) : ''} |`;
      say(row('plain', plain, '', '', false));
      say(row('TLS', tls, `${f2(median(ratios))} (${ratios.map(f2).join(', ')})`, f2(tlsP99 - plainP99), true));
      report({ bench: 'upstream-tls', metric: `${proxy} req/s, TLS upstream (vs plain)`, value: median(tls.map((r) => r.rps)), baseline: median(plain.map((r) => r.rps)), ratio: median(ratios), unit: 'req/s', note: 'ratio: median of per-round ratios' });
    }
    const mgTls = median(res.get('meshgate-tls')!.map((r) => r.rps));
    const ngTls = median(res.get('nginx-tls')!.map((r) => r.rps));
    say('');
    say(`meshgate / nginx throughput over TLS: ${f2(mgTls / ngTls)}x. Handshakes are counted at the upstream's TLS block (first request of each connection, $ssl_session_reused) during the measured window: with pooled keep-alive connections both should be near 0/s.`);
    const total = handshakes(handshakeLog);
    say(`Handshakes at the TLS upstream over the whole run (warm-ups and the first request included): ${total.full} full, ${total.resumed} resumed.`);
    const out = argv.indexOf('--out');
    if (out >= 0) writeFileSync(argv[out + 1]!, lines.join('\n') + '\n');
  } finally {
    stopAll();
    rmSync(dir, { recursive: true, force: true });
    certs.cleanup();
  }
}

main().then(
  () => process.exit(0),
  (e) => {
    process.stderr.write(`${(e as Error).stack ?? e}\n`);
    process.exit(1);
  },
);
