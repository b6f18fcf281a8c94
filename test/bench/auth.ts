// Authentication benchmark: what each auth filter costs per request, as a
// throughput ratio against the same gateway's plain route, in one run.
//
//   npx tsx test/bench/auth.ts [--rounds 3] [--seconds 6] [--warmup 2] [--connections 32]
//                              [--dist] [--no-build] [--no-pin] [--out FILE]
//
// One meshgate process (`start --workers 1`, access log off) with one route
// per case, all proxying to the same node:http upstream:
//   plain        no filter
//   key_auth     x-api-key header (SHA-256 lookup)
//   basic_auth   Basic credentials, scrypt N=2^15 hash; after the first request
//                every check hits the verified-success cache (password.ts), so
//                this measures the cached path, not scrypt itself
//   jwt_rs256    Bearer RS256 JWT, public key inline (JWKS from config)
//   jwt_hs256    Bearer HS256 JWT, inline secret
//   hmac_auth    Signature over @request-target and date (hmac-sha256)
//   plain_post   no filter, POST with a 2 KiB JSON body (hmac_digest's baseline)
//   hmac_digest  hmac_auth plus a SHA-256 Digest of that 2 KiB POST body
// wrk (1 thread) measures each route in turn; the order rotates every round.
// Medians over rounds: req/s, the ratio to plain (hmac_digest: to plain_post)
// in the same round, p50/p99,
// and gateway CPU per request (from /proc). On a 2-core machine the gateway
// runs on CPU 1 and wrk and the upstream on CPU 0 (taskset) unless --no-pin.
// Default: the gateway runs from source through tsx (`node --import tsx
// src/cli.ts`); --dist runs the built `dist/src/cli.js` (after `npm run build`
// unless --no-build).
import { spawnSync } from 'node:child_process';
import { createHash, createHmac } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import { hashPassword } from '../../src/filters/auth/password.js';
import { freePort } from '../helpers/upstream.js';
import { report } from './lib/report.js';
import { parseWrk } from './lib/wrk.js';
import { cpuSeconds, NODE_FLAGS, ROOT, stopAll, runProcess as run, startProcess as start, waitForPort } from './lib/procs.js';
import { argv, flag, runOptions } from './lib/args.js';

const o = { ...runOptions({ seconds: 6, warmup: 2 }), dist: flag('dist') };

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

interface Result {
  rps: number;
  p50: number;
  p99: number;
  cpuUsPerReq: number;
}

const KEY = 'bench-api-key-0123456789';
const HMAC_SECRET = 'bench-hmac-secret-0123456789';
const HS_SECRET = 'bench-jwt-hs256-secret-0123456789abcdef';
const BODY = JSON.stringify({ note: 'x'.repeat(2000) });

type Case = 'plain' | 'key_auth' | 'basic_auth' | 'jwt_rs256' | 'jwt_hs256' | 'hmac_auth' | 'plain_post' | 'hmac_digest';
const CASES: Case[] = ['plain', 'key_auth', 'basic_auth', 'jwt_rs256', 'jwt_hs256', 'hmac_auth', 'plain_post', 'hmac_digest'];
/** The case each one is compared with. */
const BASE: Record<Case, Case> = { plain: 'plain', key_auth: 'plain', basic_auth: 'plain', jwt_rs256: 'plain', jwt_hs256: 'plain', hmac_auth: 'plain', plain_post: 'plain_post', hmac_digest: 'plain_post' };

function hmacHeaders(method: string, path: string, digest: boolean): Record<string, string> {
  const date = new Date().toUTCString();
  const h: Record<string, string> = { Date: date };
  let list = '@request-target date';
  let s = `bench-key\n${method} ${path}\ndate: ${date}\n`;
  if (digest) {
    h.Digest = `SHA-256=${createHash('sha256').update(BODY).digest('base64')}`;
    list += ' digest';
    s += `digest: ${h.Digest}\n`;
  }
  h.Authorization = `Signature keyId="bench-key",algorithm="hmac-sha256",headers="${list}",signature="${createHmac('sha256', HMAC_SECRET).update(s).digest('base64')}"`;
  return h;
}

async function main(): Promise<void> {
  if (o.dist && !flag('no-build')) spawnSync('npm', ['run', 'build'], { cwd: ROOT, stdio: 'inherit' });
  const dir = mkdtempSync(join(tmpdir(), 'meshgate-auth-bench-'));
  try {
    const genCpu = o.pin ? 0 : undefined;
    const gwCpu = o.pin ? 1 : undefined;
    const rsa = await generateKeyPair('RS256', { extractable: true });
    const pub = { ...(await exportJWK(rsa.publicKey)), kid: 'bench', alg: 'RS256' };
    const rsToken = await new SignJWT({ sub: 'bench' }).setProtectedHeader({ alg: 'RS256', kid: 'bench' }).setIssuer('https://rs.bench').setExpirationTime('2h').sign(rsa.privateKey);
    const hsToken = await new SignJWT({ sub: 'bench' }).setProtectedHeader({ alg: 'HS256' }).setIssuer('https://hs.bench').setExpirationTime('2h').sign(new TextEncoder().encode(HS_SECRET));
    const password = await hashPassword('bench-password');

    const upPort = await freePort();
    const upSrc = `require('http').createServer((q,s)=>{q.resume();q.on('end',()=>s.end('{"ok":true}'))}).listen(${upPort},'127.0.0.1')`;
    start('upstream', process.execPath, ['-e', upSrc], genCpu);
    await waitForPort(upPort, 'upstream');

    const port = await freePort();
    const route = (name: Case, filter?: string) => `  - { name: ${name}, match: { path: { prefix: /${name} } }, backends: [{ service: up.static }]${filter ? `, filters: [${filter}]` : ''} }`;
    const yaml = `listeners: [{ name: public, address: "127.0.0.1:${port}" }]
admin: { address: "127.0.0.1:${await freePort()}" }
log: { level: warn, access: false }
registries: [{ name: up, type: static, endpoints: ["127.0.0.1:${upPort}"] }]
consumers:
  - name: bench
    credentials:
      - { type: key_auth, key: "${KEY}" }
      - { type: basic_auth, username: bench, password: "${password}" }
      - { type: jwt_auth, issuer: "https://rs.bench", keys: [${JSON.stringify(pub)}] }
      - { type: jwt_auth, issuer: "https://hs.bench", secret: "${HS_SECRET}" }
      - { type: hmac_auth, keyId: bench-key, secret: "${HMAC_SECRET}" }
routes:
${route('plain')}
${route('key_auth', '{ type: key_auth }')}
${route('basic_auth', '{ type: basic_auth }')}
${route('jwt_rs256', '{ type: jwt_auth }')}
${route('jwt_hs256', '{ type: jwt_auth }')}
${route('hmac_auth', '{ type: hmac_auth }')}
${route('plain_post')}
${route('hmac_digest', '{ type: hmac_auth, validateRequestBody: true }')}
`;
    const file = join(dir, 'meshgate.yaml');
    writeFileSync(file, yaml);
    const args = [...NODE_FLAGS, ...(o.dist ? ['dist/src/cli.js'] : ['--import', 'tsx', 'src/cli.ts']), 'start', '--config', file, '--workers', '1'];
    const gw = start('meshgate', process.execPath, args, gwCpu);
    await waitForPort(port, 'meshgate');

    /** A wrk script for one case (made right before it runs: hmac_auth's Date must be fresh). */
    const script = (c: Case): string => {
      let headers: Record<string, string> = {};
      let post = false;
      if (c === 'key_auth') headers = { 'x-api-key': KEY };
      if (c === 'basic_auth') headers = { Authorization: `Basic ${Buffer.from('bench:bench-password').toString('base64')}` };
      if (c === 'jwt_rs256') headers = { Authorization: `Bearer ${rsToken}` };
      if (c === 'jwt_hs256') headers = { Authorization: `Bearer ${hsToken}` };
      if (c === 'hmac_auth') headers = hmacHeaders('GET', `/${c}/items`, false);
      if (c === 'hmac_digest') headers = hmacHeaders('POST', `/${c}/items`, true);
      if (c === 'hmac_digest' || c === 'plain_post') post = true;
      const lines = Object.entries(headers).map(([k, v]) => `wrk.headers["${k}"] = [[${v}]]`);
      if (post) lines.push('wrk.method = "POST"', `wrk.body = [[${BODY}]]`, 'wrk.headers["Content-Type"] = "application/json"');
      const f = join(dir, `${c}.lua`);
      writeFileSync(f, lines.join('\n') + '\n');
      return f;
    };

    const measure = async (c: Case): Promise<Result> => {
      const url = `http://127.0.0.1:${port}/${c}/items`;
      const s = script(c);
      await run('wrk', ['-t1', `-c${o.connections}`, `-d${o.warmup}s`, '-s', s, url], genCpu);
      const c0 = cpuSeconds(gw.pid!);
      const t0 = performance.now();
      const r = parseWrk(await run('wrk', ['-t1', `-c${o.connections}`, `-d${o.seconds}s`, '--latency', '-s', s, url], genCpu));
      if (r.errors > 0) throw new Error(`${c}: ${r.errors} errors or non-2xx answers`);
      const served = r.rps * ((performance.now() - t0) / 1000);
      return { ...r, cpuUsPerReq: ((cpuSeconds(gw.pid!) - c0) * 1e6) / served };
    };

    const res = new Map<Case, Result[]>(CASES.map((c) => [c, []]));
    const ratios = new Map<Case, number[]>(CASES.map((c) => [c, []]));
    for (let round = 0; round < o.rounds; round++) {
      const order = CASES.map((_, i) => CASES[(i + round) % CASES.length]!);
      const got = new Map<Case, Result>();
      for (const c of order) {
        const r = await measure(c);
        got.set(c, r);
        res.get(c)!.push(r);
        process.stderr.write(`round ${round + 1} ${c}: ${r.rps.toFixed(0)} req/s p99 ${r.p99.toFixed(2)} ms ${r.cpuUsPerReq.toFixed(1)} us/req\n`);
      }
      for (const c of CASES) ratios.get(c)!.push(got.get(c)!.rps / got.get(BASE[c])!.rps);
    }
    const lines: string[] = [];
    const say = (s: string): void => {
      lines.push(s);
      process.stdout.write(`${s}\n`);
    };
    say(`# Authentication benchmark (${new Date().toISOString()}), meshgate --workers 1 ${o.dist ? '(dist)' : '(from source via tsx)'}, access log off`);
    say(`wrk -t1 -c${o.connections}, ${o.seconds} s per run, ${o.rounds} rounds (medians)${o.pin ? ', gateway pinned to CPU 1, wrk and upstream to CPU 0' : ''}`);
    say('');
    say('| route | req/s | ratio to baseline | p50 ms | p99 ms | CPU µs/req |');
    say('| --- | ---: | ---: | ---: | ---: | ---: |');
    for (const c of CASES) {
      const rs = res.get(c)!;
      const q = ratios.get(c)!;
      say(
        `| ${c} | ${median(rs.map((r) => r.rps)).toFixed(0)} | ${BASE[c] === c ? 'baseline' : `${median(q).toFixed(2)} vs ${BASE[c]} (rounds: ${q.map((x) => x.toFixed(2)).join(', ')})`} | ${median(rs.map((r) => r.p50)).toFixed(2)} | ${median(rs.map((r) => r.p99)).toFixed(2)} | ${median(rs.map((r) => r.cpuUsPerReq)).toFixed(1)} |`,
      );
    }
    for (const c of CASES) {
      if (BASE[c] === c) continue;
      const rs = median(res.get(c)!.map((r) => r.rps));
      report({ bench: 'auth', metric: `${c} req/s (vs ${BASE[c]})`, value: rs, baseline: median(res.get(BASE[c])!.map((r) => r.rps)), ratio: median(ratios.get(c)!), unit: 'req/s', note: 'ratio: median of per-round ratios' });
    }
    const out = argv.indexOf('--out');
    if (out >= 0) writeFileSync(argv[out + 1]!, lines.join('\n') + '\n');
  } finally {
    stopAll();
    rmSync(dir, { recursive: true, force: true });
  }
}

main().then(
  () => process.exit(0),
  (e) => {
    process.stderr.write(`${(e as Error).stack ?? e}\n`);
    process.exit(1);
  },
);
