// The prefilters (literal factors, character clauses, plain-value restrictions,
// whole-list and whole-rule gates, the transformation triggers that let a list
// skip a pipeline) and what is kept across requests (a string's
// transformations and operator answers) only decide which work can be
// skipped: they must never change what the rules conclude. This runs CRS at paranoia level 4 (every
// request rule) over CRS's own regression requests, libinjection's attack
// and false-positive lists, the benign corpus and JSON documents made to
// stress the plain-value path, once with the prefilters and once without,
// (and nothing kept from other requests), and compares every match (rule,
// variable, value) and the scores. Each request runs twice with them: cold
// for its new strings, then with everything it left behind.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Transaction, type Verdict } from '../../../../src/filters/waf/engine.js';
import { addBodyVars, buildHeadVars } from '../../../../src/filters/waf/request-vars.js';
import { loadCrs } from '../../../../src/filters/waf/ruleset.js';
import { buildBenignRequest, buildValueRequest, loadAttackLists, loadBenign, loadFalsePositives } from '../../../waf/corpus.js';
import { buildFtwRequest, loadFtwStages } from '../../../waf/ftw.js';

const rules = loadCrs({ blockingParanoiaLevel: 4, detectionParanoiaLevel: 4, maxMatches: 1000 });

/** A lenient parse of request bytes into what the WAF reads; undefined for bytes with no request line. */
function parse(bytes: Buffer): { method: string; target: string; version: string; headers: [string, string][]; body: Buffer } | undefined {
  const s = bytes.toString('latin1');
  const end = s.indexOf('\r\n\r\n');
  const head = end < 0 ? s : s.slice(0, end);
  const lines = head.split('\r\n');
  const m = /^(\S+) (\S+)(?: (\S+))?$/.exec(lines[0] ?? '');
  if (!m) return undefined;
  const headers: [string, string][] = [];
  for (const l of lines.slice(1)) {
    const i = l.indexOf(':');
    if (i > 0) headers.push([l.slice(0, i), l.slice(i + 1).trim()]);
  }
  return { method: m[1]!, target: m[2]!, version: m[3] ?? 'HTTP/1.1', headers, body: end < 0 ? Buffer.alloc(0) : bytes.subarray(end + 4) };
}

function run(bytes: Buffer, prefilter: boolean): Verdict | undefined {
  const r = parse(bytes);
  if (!r) return undefined;
  const head = buildHeadVars({ method: r.method, target: r.target, httpVersion: r.version, headers: r.headers, remoteAddr: '127.0.0.1', remotePort: 40000, uniqueId: 'x' });
  const tx = new Transaction(rules, head, { prefilter });
  if (tx.runPhase(1) === undefined) {
    const processor = tx.requestBodyProcessor as 'URLENCODED' | 'JSON' | 'MULTIPART' | 'XML' | undefined;
    tx.runPhase(2, r.body.length > 0 ? addBodyVars(head, r.body, { truncated: false, processor }) : head);
  }
  return tx.verdict();
}

function summary(v: Verdict): string {
  const ms = v.matches.map((m) => `${m.id} ${m.variable} ${JSON.stringify(m.value)}`).sort();
  return `score ${v.inboundScore}/${v.detectionScore} blocked ${v.blocked}\n${ms.join('\n')}`;
}

/** JSON bodies whose values are plain (no shell or quote bytes) yet hold commands, paths and SQL words, so the plain prefilters decide. */
function plainDocs(): Buffer[] {
  const words = ['ls', 'cat /etc/passwd', 'wget', 'curl http', 'busybox', 'nc -e', 'python -c', 'env', 'w', 'ps aux', 'select from', 'union select', 'admin', 'or 1=1', 'sleep 5', 'eval', 'time', 'nohup', 'echo', 'id', 'uname -a', 'bash -i', 'sh', 'ping -c 3 host', 'file:///etc/shadow', 'php://input', 'java.lang.Runtime', '../../etc', 'Running shoe', 'jane.doe@example.com'];
  const out: Buffer[] = [];
  for (let i = 0; i < words.length; i++) {
    for (const sep of ['', '=', '\n', ' ', '/', ',']) {
      const v = sep + words[i]! + (i % 2 ? ' ' + words[(i * 7) % words.length] : '');
      out.push(Buffer.from(JSON.stringify({ q: v, [`k${words[i]}`]: i, list: [v, v.toUpperCase()], nested: { note: `${v} ${sep}${words[(i + 3) % words.length]}` } })));
    }
  }
  return out;
}

function jsonRequest(body: Buffer): Buffer {
  return Buffer.concat([Buffer.from(`POST /api/items HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n`, 'latin1'), body]);
}

test('the prefilters never change a verdict: CRS at PL4 with and without them agree on every request', (t) => {
  const inputs: { name: string; bytes: Buffer }[] = [];
  for (const st of loadFtwStages()) inputs.push({ name: `${st.file} test ${st.testId}`, bytes: buildFtwRequest(st.input) });
  for (const list of loadAttackLists()) list.values.forEach((v, i) => inputs.push({ name: `${list.name}:${i + 1}`, bytes: buildValueRequest(v, i % 2 ? 'form' : 'query') }));
  loadFalsePositives().forEach((v, i) => inputs.push({ name: `false_positives:${i + 1}`, bytes: buildValueRequest(v, i % 2 ? 'form' : 'query') }));
  for (const item of loadBenign()) inputs.push({ name: `benign ${item.id}`, bytes: buildBenignRequest(item) });
  plainDocs().forEach((b, i) => inputs.push({ name: `plain json ${i}`, bytes: jsonRequest(b) }));

  let compared = 0;
  let matched = 0;
  const differ: string[] = [];
  for (const { name, bytes } of inputs) {
    const a = run(bytes, true);
    const again = run(bytes, true);
    const b = run(bytes, false);
    if (a === undefined || again === undefined || b === undefined) continue;
    compared++;
    if (b.matches.length > 0) matched++;
    const sb = summary(b);
    for (const [how, v] of [['with', a], ['again', again]] as const) {
      const sa = summary(v);
      if (sa !== sb && differ.length < 5) differ.push(`${name}:\n ${how}: ${sa.replace(/\n/g, '\n          ')}\n without: ${sb.replace(/\n/g, '\n          ')}`);
    }
  }
  t.diagnostic(`${compared} requests compared, ${matched} with matches`);
  assert.deepEqual(differ, []);
  assert.ok(compared > 7000, `only ${compared} requests`);
  assert.ok(matched > 4000, `only ${matched} requests matched anything`);
});
