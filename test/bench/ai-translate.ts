// Translation cost microbenchmark: CPU time per stream chunk spent in the AI
// translators, no network. The figure is what each streamed token costs
// the gateway on top of plain SSE relaying.
//
//   npx tsx test/bench/ai-translate.ts [--chunks 20000] [--rounds 7]
//
// Cases (each over one synthetic stream of --chunks text deltas plus a tool
// call, written in the providers' documented wire formats):
//   anthropic->openai      AnthropicStreamDecoder.push, one upstream event per push
//                          (how an upstream usually arrives), output chunks counted
//   anthropic->openai+json the same plus JSON.stringify of every output chunk
//                          (what the route handler then writes)
//   anthropic->openai 16K  the upstream bytes in 16 KiB pieces
//   openai->anthropic      OpenAIToMessagesStream.push on parsed chunks
//   openai->anthropic+json JSON.parse of each upstream chunk, push, JSON.stringify of each event
//   gemini->openai         GeminiStreamDecoder.push, one CRLF frame per push
//   ollama->openai         OllamaStreamDecoder.push, one NDJSON line per push
// Reported: median over rounds of CPU µs (and wall µs) per input chunk, after one warm-up round.
import { anthropicTranslator } from '../../src/upstreams/ai/translate/anthropic.js';
import { geminiTranslator } from '../../src/upstreams/ai/translate/gemini.js';
import { OpenAIToMessagesStream } from '../../src/upstreams/ai/translate/messages-inbound.js';
import { ollamaNativeTranslator } from '../../src/upstreams/ai/translate/ollama.js';
import { report } from './lib/report.js';

type Json = Record<string, unknown>;

function arg(name: string, dflt: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : dflt;
}
const N = arg('chunks', 20000);
const ROUNDS = arg('rounds', 7);

const WORDS = ['The', ' quick', ' brown', ' fox', ' jumps', ' over', ' the', ' lazy', ' dog', ',', ' and', ' then', ' some', ' 漢字', ' ü', '.'];
const word = (i: number) => WORDS[i % WORDS.length]!;

function anthropicEvents(): Buffer[] {
  const ev = (type: string, d: Json) => Buffer.from(`event: ${type}\ndata: ${JSON.stringify({ type, ...d })}\n\n`);
  const out: Buffer[] = [
    ev('message_start', { message: { id: 'msg_bench', type: 'message', role: 'assistant', content: [], model: 'claude-x', stop_reason: null, stop_sequence: null, usage: { input_tokens: 1200, output_tokens: 1 } } }),
    ev('content_block_start', { index: 0, content_block: { type: 'text', text: '' } }),
  ];
  for (let i = 0; i < N; i++) {
    out.push(ev('content_block_delta', { index: 0, delta: { type: 'text_delta', text: word(i) } }));
    if (i % 500 === 0) out.push(ev('ping', {}));
  }
  out.push(ev('content_block_stop', { index: 0 }));
  out.push(ev('content_block_start', { index: 1, content_block: { type: 'tool_use', id: 'toolu_b', name: 'weather', input: {} } }));
  for (const p of ['{"ci', 'ty": "Pa', 'ris"}']) out.push(ev('content_block_delta', { index: 1, delta: { type: 'input_json_delta', partial_json: p } }));
  out.push(ev('content_block_stop', { index: 1 }));
  out.push(ev('message_delta', { delta: { stop_reason: 'tool_use', stop_sequence: null }, usage: { output_tokens: N } }));
  out.push(ev('message_stop', {}));
  return out;
}

function openaiChunks(): Json[] {
  const c = (delta: Json, finish: string | null = null): Json => ({ id: 'chatcmpl-b', object: 'chat.completion.chunk', created: 1, model: 'gpt-x', choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }], usage: null });
  const out: Json[] = [c({ role: 'assistant', content: '' })];
  for (let i = 0; i < N; i++) out.push(c({ content: word(i) }));
  out.push(c({ tool_calls: [{ index: 0, id: 'call_b', type: 'function', function: { name: 'weather', arguments: '' } }] }));
  for (const p of ['{"ci', 'ty": "Pa', 'ris"}']) out.push(c({ tool_calls: [{ index: 0, function: { arguments: p } }] }));
  out.push(c({}, 'tool_calls'));
  out.push({ id: 'chatcmpl-b', object: 'chat.completion.chunk', created: 1, model: 'gpt-x', choices: [], usage: { prompt_tokens: 1200, completion_tokens: N, total_tokens: 1200 + N } });
  return out;
}

function geminiFrames(): Buffer[] {
  const out: Buffer[] = [];
  for (let i = 0; i < N; i++) {
    const cand: Json = { content: { role: 'model', parts: [{ text: word(i) }] }, index: 0 };
    if (i === N - 1) cand.finishReason = 'STOP';
    out.push(Buffer.from(`data: ${JSON.stringify({ candidates: [cand], usageMetadata: { promptTokenCount: 1200, candidatesTokenCount: i + 1, totalTokenCount: 1201 + i }, modelVersion: 'gemini-x', responseId: 'r' })}\r\n\r\n`));
  }
  return out;
}

function ollamaLines(): Buffer[] {
  const out: Buffer[] = [];
  for (let i = 0; i < N; i++) out.push(Buffer.from(JSON.stringify({ model: 'llama3', created_at: '2026-01-01T00:00:00Z', message: { role: 'assistant', content: word(i) }, done: false }) + '\n'));
  out.push(Buffer.from(JSON.stringify({ model: 'llama3', created_at: '2026-01-01T00:00:00Z', message: { role: 'assistant', content: '' }, done: true, done_reason: 'stop', prompt_eval_count: 1200, eval_count: N }) + '\n'));
  return out;
}

function concatPieces(bufs: Buffer[], size: number): Buffer[] {
  const all = Buffer.concat(bufs);
  const out: Buffer[] = [];
  for (let i = 0; i < all.length; i += size) out.push(all.subarray(i, i + size));
  return out;
}

const opts = { id: 'chatcmpl-bench', model: 'gpt-4o', created: 1, includeUsage: true };

interface Case {
  name: string;
  inputs: number;
  run(): number; // returns output count, so nothing is optimised away
}

const anth = anthropicEvents();
const anth16k = concatPieces(anth, 16 * 1024);
const oai = openaiChunks();
const oaiText = oai.map((c) => JSON.stringify(c));
const gem = geminiFrames();
const oll = ollamaLines();

const cases: Case[] = [
  {
    name: 'anthropic->openai',
    inputs: anth.length,
    run() {
      const d = anthropicTranslator.stream(opts);
      let n = 0;
      for (const b of anth) n += d.push(b).length;
      return n + d.end().length;
    },
  },
  {
    name: 'anthropic->openai+json',
    inputs: anth.length,
    run() {
      const d = anthropicTranslator.stream(opts);
      let n = 0;
      for (const b of anth) for (const c of d.push(b)) n += JSON.stringify(c).length;
      return n + d.end().length;
    },
  },
  {
    name: 'anthropic->openai 16K',
    inputs: anth.length,
    run() {
      const d = anthropicTranslator.stream(opts);
      let n = 0;
      for (const b of anth16k) n += d.push(b).length;
      return n + d.end().length;
    },
  },
  {
    name: 'openai->anthropic',
    inputs: oai.length,
    run() {
      const s = new OpenAIToMessagesStream({ model: 'claude-x' });
      let n = 0;
      for (const c of oai) n += s.push(c).length;
      return n + s.end().length;
    },
  },
  {
    name: 'openai->anthropic+json',
    inputs: oai.length,
    run() {
      const s = new OpenAIToMessagesStream({ model: 'claude-x' });
      let n = 0;
      for (const t of oaiText) for (const e of s.push(JSON.parse(t) as Json)) n += JSON.stringify(e.data).length;
      return n + s.end().length;
    },
  },
  {
    name: 'gemini->openai',
    inputs: gem.length,
    run() {
      const d = geminiTranslator.stream(opts);
      let n = 0;
      for (const b of gem) n += d.push(b).length;
      return n + d.end().length;
    },
  },
  {
    name: 'ollama->openai',
    inputs: oll.length,
    run() {
      const d = ollamaNativeTranslator.stream(opts);
      let n = 0;
      for (const b of oll) n += d.push(b).length;
      return n + d.end().length;
    },
  },
];

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

console.log(`node ${process.version}, ${N} text chunks per stream, ${ROUNDS} rounds (+1 warm-up)`);
// CPU time of this process (user + system) is the cost figure: on a shared
// machine wall time also counts waiting for a core. Wall time is shown beside it.
console.log('case                       cpu µs/chunk  wall µs/chunk  chunks/s (cpu)');
let sink = 0;
let firstUs: number | undefined;
for (const c of cases) {
  const cpu: number[] = [];
  const wall: number[] = [];
  for (let r = 0; r <= ROUNDS; r++) {
    const c0 = process.cpuUsage();
    const t0 = process.hrtime.bigint();
    sink += c.run();
    const dt = Number(process.hrtime.bigint() - t0) / 1000;
    const dc = process.cpuUsage(c0);
    if (r > 0) {
      wall.push(dt / c.inputs);
      cpu.push((dc.user + dc.system) / c.inputs);
    }
  }
  const us = median(cpu);
  console.log(`${c.name.padEnd(26)}${us.toFixed(3).padStart(13)}${median(wall).toFixed(3).padStart(15)}${Math.round(1e6 / us).toLocaleString('en-US').padStart(16)}`);
  if (firstUs === undefined) firstUs = us;
  else report({ bench: 'ai-translate', metric: `CPU us/chunk ${c.name.trim()} (vs ${cases[0]!.name.trim()})`, value: us, baseline: firstUs, unit: 'us' });
}
if (sink === 0) console.log('(no output?)');
