// AI routes: what the gateway adds to a streamed chat completion, and what
// 1,000 concurrent streams cost it.
//
//   npx tsx test/bench/ai.ts        (AI_BENCH_STREAMS=1000, AI_BENCH_SAMPLES=200)
//
// Processes: the OpenAI-like provider double (test/doubles/llm) in a child,
// the gateway in another child (`src/cli.ts start --workers 1`, run through
// tsx from source), the clients here (plain node:http, SSE read by hand).
//  1. Latency, sequential streams (model long-20: 20 content chunks), direct
//     to the double vs through the gateway: time to first content chunk
//     (p50/p99); and per chunk (model stamp-20: each chunk carries the time
//     the double wrote it), the time from that write to the client's read.
//  2. AI_BENCH_STREAMS concurrent streams (model slow-100: 40 chunks 100 ms
//     apart, ~4 s each; started over AI_BENCH_RAMP_MS=2000, then all open
//     together): the gateway's peak RSS and CPU time (from /proc),
//     streams complete and intact; the same streams direct to the double
//     first, for the time to first token without the gateway.
//  3. The same again with a config reload (admin POST /api/reload) 1.5 s
//     in: streams complete and intact.
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync, writeFileSync, mkdtempSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { report } from './lib/report.js';

const SELF = fileURLToPath(import.meta.url);
const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const STREAMS = Number(process.env.AI_BENCH_STREAMS ?? 1000);
const SAMPLES = Number(process.env.AI_BENCH_SAMPLES ?? 200);
const RAMP_MS = Number(process.env.AI_BENCH_RAMP_MS ?? 2000);


function free(): Promise<number> {
  return new Promise((resolve) => {
    const s = http.createServer();
    s.listen(0, '127.0.0.1', () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => resolve(p));
    });
  });
}

const agent = new http.Agent({ keepAlive: true, maxSockets: Infinity });

interface StreamResult {
  /** Why a stream did not complete: an HTTP status, a socket error, or "" */
  problem?: string;
  ttftMs: number;
  chunkTimes: number[];
  /** stamp-<n>: per chunk, receive time minus the time the double wrote it (ms). */
  transitMs: number[];
  chunks: number;
  done: boolean;
}

/** One streamed chat completion; times are ms since the request was sent. */
function stream(port: number, path: string, model: string): Promise<StreamResult> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const body = JSON.stringify({ model, messages: [{ role: 'user', content: 'bench' }], stream: true });
    const req = http.request({ host: '127.0.0.1', port, path, method: 'POST', agent, headers: { 'content-type': 'application/json', authorization: 'Bearer x' } }, (res) => {
      if (res.statusCode !== 200) {
        res.resume();
        resolve({ problem: `status ${res.statusCode}`, ttftMs: NaN, chunkTimes: [], transitMs: [], chunks: 0, done: false });
        return;
      }
      let buf = '';
      const r: StreamResult = { ttftMs: NaN, chunkTimes: [], transitMs: [], chunks: 0, done: false };
      res.setEncoding('utf8');
      res.on('data', (s: string) => {
        buf += s;
        let i: number;
        while ((i = buf.indexOf('\n\n')) >= 0) {
          const frame = buf.slice(0, i);
          buf = buf.slice(i + 2);
          if (!frame.startsWith('data: ')) continue;
          if (frame === 'data: [DONE]') {
            r.done = true;
            continue;
          }
          if (frame.includes('"content":"') && !frame.includes('"content":""')) {
            const t = performance.now() - t0;
            if (r.chunks === 0) r.ttftMs = t;
            r.chunkTimes.push(t);
            const stamp = /"t=([\d.]+)"/.exec(frame);
            if (stamp) r.transitMs.push(performance.timeOrigin + performance.now() - Number(stamp[1]));
            r.chunks++;
          }
        }
      });
      res.on('end', () => resolve(r));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

function pct(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
}

function procStats(pid: number): { rssMb: number; cpuMs: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const rss = Number(/VmRSS:\s+(\d+)/.exec(status)![1]) / 1024;
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  const ticks = Number(stat[11]) + Number(stat[12]); // utime + stime
  return { rssMb: rss, cpuMs: (ticks * 1000) / 100 };
}

async function waitHttp(url: string): Promise<void> {
  for (let i = 0; i < 300; i++) {
    try {
      const r = await fetch(url);
      await r.arrayBuffer();
      return;
    } catch {
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  throw new Error(`${url} did not come up`);
}

async function concurrent(gwPort: number, gwPid: number, adminPort: number | undefined): Promise<Record<string, unknown>> {
  const before = procStats(gwPid);
  let peak = before.rssMb;
  const sampler = setInterval(() => {
    peak = Math.max(peak, procStats(gwPid).rssMb);
  }, 100);
  const t0 = performance.now();
  let reload: unknown;
  const reloadTimer = adminPort
    ? setTimeout(() => {
        fetch(`http://127.0.0.1:${adminPort}/api/reload`, { method: 'POST' })
          .then(async (r) => (reload = { status: r.status, body: ((await r.text()) || '').slice(0, 120) }))
          .catch((e) => (reload = String(e)));
      }, 1500)
    : undefined;
  // Streams start RAMP_MS / STREAMS apart: 1,000 connects in the same instant overflow the listen backlog (511 in Node) and measure SYN retransmits, not the gateway.
  const results = await Promise.all(Array.from({ length: STREAMS }, (_, i) => new Promise((r) => setTimeout(r, (i * RAMP_MS) / STREAMS)).then(() => stream(gwPort, '/v1/chat/completions', 'slow-100')).catch((e: Error) => ({ problem: (e as NodeJS.ErrnoException).code ?? e.message, ttftMs: NaN, chunkTimes: [], transitMs: [], chunks: 0, done: false }))));
  clearInterval(sampler);
  clearTimeout(reloadTimer);
  const after = procStats(gwPid);
  const wall = performance.now() - t0;
  const intact = results.filter((r) => r.done && r.chunks === 40).length;
  const problems: Record<string, number> = {};
  for (const r of results) {
    if (r.done && r.chunks === 40) continue;
    const k = r.problem ?? (r.done ? `done after ${r.chunks} chunks` : `ended after ${r.chunks} chunks without [DONE]`);
    problems[k] = (problems[k] ?? 0) + 1;
  }
  return {
    streams: STREAMS,
    intact,
    ...(intact < STREAMS ? { problems } : {}),
    wallS: +(wall / 1000).toFixed(2),
    rssBeforeMb: +before.rssMb.toFixed(1),
    rssPeakMb: +peak.toFixed(1),
    cpuS: +((after.cpuMs - before.cpuMs) / 1000).toFixed(2),
    cpuPct: +(((after.cpuMs - before.cpuMs) / wall) * 100).toFixed(1),
    ttftP50Ms: +pct(results.map((r) => r.ttftMs).filter(Number.isFinite), 50).toFixed(1),
    ttftP99Ms: +pct(results.map((r) => r.ttftMs).filter(Number.isFinite), 99).toFixed(1),
    ...(adminPort ? { reload } : {}),
  };
}

async function main(): Promise<void> {
  const kids: ChildProcess[] = [];
  try {
    const d = spawn(process.execPath, ['--import', 'tsx', SELF, '--double'], { stdio: ['ignore', 'pipe', 'inherit'] });
    kids.push(d);
    const [line] = (await once(d.stdout!, 'data')) as [Buffer];
    const doublePort = Number(line.toString().trim());
    const gwPort = await free();
    const adminPort = await free();
    const dir = mkdtempSync(join(tmpdir(), 'meshgate-ai-bench-'));
    const cfg = join(dir, 'meshgate.yaml');
    writeFileSync(
      cfg,
      [
        'listeners:',
        `  - { name: public, address: "127.0.0.1:${gwPort}" }`,
        `admin: { address: "127.0.0.1:${adminPort}" }`,
        'log: { level: warn, access: false }',
        'routes:',
        '  - name: llm',
        '    match: { path: { prefix: /v1/ } }',
        '    ai:',
        `      providers: [{ name: lab, type: openai, baseUrl: "http://127.0.0.1:${doublePort}/v1", apiKeys: ["sk-bench"] }]`,
        '',
      ].join('\n'),
    );
    const gw = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'src/cli.ts'), 'start', '--config', cfg, '--workers', '1'], { stdio: ['ignore', 'ignore', 'inherit'] });
    kids.push(gw);
    await waitHttp(`http://127.0.0.1:${gwPort}/v1/models`);

    // 1. latency, sequential, interleaved direct/gateway
    const direct: StreamResult[] = [];
    const via: StreamResult[] = [];
    for (let i = 0; i < 20; i++) {
      await stream(doublePort, '/v1/chat/completions', 'long-20');
      await stream(gwPort, '/v1/chat/completions', 'long-20');
    }
    for (let i = 0; i < SAMPLES; i++) {
      direct.push(await stream(doublePort, '/v1/chat/completions', 'long-20'));
      via.push(await stream(gwPort, '/v1/chat/completions', 'long-20'));
    }
    // Per chunk: the time from the double writing a chunk to the client reading it (stamp-20: 20 chunks 2 ms apart).
    const dT: number[] = [];
    const gT: number[] = [];
    for (let i = 0; i < SAMPLES; i++) {
      dT.push(...(await stream(doublePort, '/v1/chat/completions', 'stamp-20')).transitMs);
      gT.push(...(await stream(gwPort, '/v1/chat/completions', 'stamp-20')).transitMs);
    }
    const lat = {
      samples: SAMPLES,
      directTtftP50: pct(direct.map((r) => r.ttftMs), 50),
      directTtftP99: pct(direct.map((r) => r.ttftMs), 99),
      gatewayTtftP50: pct(via.map((r) => r.ttftMs), 50),
      gatewayTtftP99: pct(via.map((r) => r.ttftMs), 99),
      directChunkTransitP50: pct(dT, 50),
      directChunkTransitP99: pct(dT, 99),
      gatewayChunkTransitP50: pct(gT, 50),
      gatewayChunkTransitP99: pct(gT, 99),
      allIntact: via.every((r) => r.done && r.chunks === 20),
    };
    console.log('latency (ms):', JSON.stringify(lat, (_k, v) => (typeof v === 'number' ? +v.toFixed(3) : v)));
    report({ bench: 'ai', metric: 'time to first token p50 ms, gateway (vs direct)', value: lat.gatewayTtftP50, baseline: lat.directTtftP50, unit: 'ms' });
    report({ bench: 'ai', metric: 'chunk transit p50 ms, gateway (vs direct)', value: lat.gatewayChunkTransitP50, baseline: lat.directChunkTransitP50, unit: 'ms' });

    // 2. concurrent streams: direct to the double first (its numbers are the double's process), then through the gateway
    console.log(`${STREAMS} concurrent streams, direct to the double:`, JSON.stringify(await concurrent(doublePort, d.pid!, undefined)));
    console.log(`${STREAMS} concurrent streams:`, JSON.stringify(await concurrent(gwPort, gw.pid!, undefined)));
    // 3. the same, with a reload in the middle
    console.log(`${STREAMS} concurrent streams + reload:`, JSON.stringify(await concurrent(gwPort, gw.pid!, adminPort)));
  } finally {
    for (const k of kids) k.kill('SIGTERM');
    agent.destroy();
  }
}

if (process.argv.includes('--double')) {
  const { startOpenAILikeDouble } = await import('../doubles/llm/openai-like.js');
  const d = await startOpenAILikeDouble('openai');
  // No request recording in a benchmark: keep the double's memory flat.
  d.received.push = () => 0;
  process.stdout.write(`${d.port}\n`);
} else {
  await main();
}
