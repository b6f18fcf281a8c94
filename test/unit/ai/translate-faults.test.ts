// Translators under faults and hostile input: upstreams that send odd but
// valid JSON, wrong types, lines that never end; clients that send malformed
// requests. Nothing may throw anything but TranslationError (a 400 naming the
// field), and every output must still be something an OpenAI (or Anthropic)
// client can parse.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { anthropicTranslator } from '../../../src/upstreams/ai/translate/anthropic.js';
import { TranslationError } from '../../../src/upstreams/ai/translate/common.js';
import { geminiTranslator } from '../../../src/upstreams/ai/translate/gemini.js';
import { OpenAIToMessagesStream, messagesToOpenAI, openAIToMessage } from '../../../src/upstreams/ai/translate/messages-inbound.js';
import { ollamaNativeTranslator } from '../../../src/upstreams/ai/translate/ollama.js';
import { SseParser } from '../../../src/upstreams/ai/translate/sse.js';
import type { ChatTranslator, Json } from '../../../src/upstreams/ai/translate/types.js';
import { seeded } from '../../helpers/random.js';

const OPTS = { id: 'chatcmpl-f', model: 'm', created: 1, includeUsage: true };
const translators: Array<[string, ChatTranslator]> = [
  ['anthropic', anthropicTranslator],
  ['gemini', geminiTranslator],
  ['ollama', ollamaNativeTranslator],
];

const rnd = seeded(987654321);
const pick = <T>(xs: readonly T[]): T => xs[rnd(xs.length)]!;

/** A random JSON value, biased toward the field names and types translators read. */
function junk(depth = 0): unknown {
  const scalars = [null, true, false, 0, -1, 1.5, 1e308, '', 'x', 'tool_use', 'text', 'STOP', 'end_turn', 'tool_calls', [], {}];
  if (depth > 3 || rnd(3) === 0) return pick(scalars);
  if (rnd(4) === 0) return Array.from({ length: rnd(4) }, () => junk(depth + 1));
  const keys = ['type', 'index', 'delta', 'text', 'partial_json', 'content_block', 'message', 'usage', 'input_tokens', 'output_tokens', 'stop_reason', 'error', 'candidates', 'content', 'parts', 'functionCall', 'finishReason', 'usageMetadata', 'done', 'done_reason', 'tool_calls', 'function', 'arguments', 'name', 'id', 'choices', 'finish_reason', 'role', 'thought', 'thoughtSignature'];
  const o: Json = {};
  for (let i = rnd(5); i > 0; i--) o[pick(keys)] = junk(depth + 1);
  return o;
}

function assertChunkShape(c: Json, where: string): void {
  if ('error' in c) {
    const e = c.error as Json;
    assert.equal(typeof e.message, 'string', where);
    assert.equal(typeof e.type, 'string', where);
    return;
  }
  assert.equal(c.object, 'chat.completion.chunk', where);
  assert.ok(Array.isArray(c.choices), where);
  for (const ch of c.choices as Json[]) {
    assert.equal(typeof ch.index, 'number', where);
    assert.equal(typeof ch.delta, 'object', where);
    const fr = ch.finish_reason;
    assert.ok(fr === null || ['stop', 'length', 'tool_calls', 'content_filter'].includes(fr as string), `${where}: finish_reason ${String(fr)}`);
    for (const tc of ((ch.delta as Json).tool_calls as Json[] | undefined) ?? []) {
      assert.equal(typeof tc.index, 'number', where);
      const fn = tc.function as Json;
      if (fn.arguments !== undefined) assert.equal(typeof fn.arguments, 'string', where);
    }
  }
}

function wireOf(name: string, events: unknown[]): string {
  if (name === 'ollama') return events.map((e) => JSON.stringify(e) + '\n').join('');
  return events.map((e) => `${name === 'anthropic' && typeof e === 'object' && e && typeof (e as Json).type === 'string' ? `event: ${(e as Json).type as string}\n` : ''}data: ${JSON.stringify(e)}\n\n`).join('');
}

describe('translators: faults', () => {
  for (const [name, t] of translators) {
    it(`${name}: random but valid JSON events never throw, and every output parses as a chunk or an error`, () => {
      for (let round = 0; round < 400; round++) {
        const events = Array.from({ length: 1 + rnd(12) }, () => junk());
        const d = t.stream(OPTS);
        const out = [...d.push(Buffer.from(wireOf(name, events))), ...d.end()];
        out.forEach((c, i) => assertChunkShape(c, `${name} round ${round} chunk ${i}`));
        // At most one error, and nothing after it.
        const firstErr = out.findIndex((c) => 'error' in c);
        if (firstErr >= 0) assert.equal(firstErr, out.length - 1, `${name} round ${round}: output after an error`);
        const u = d.usage;
        if (u) assert.ok(Number.isInteger(u.input) && u.input >= 0 && Number.isInteger(u.output) && u.output >= 0 && u.total >= 0);
      }
    });

    it(`${name}: odd non-stream bodies and error bodies give well-formed OpenAI objects`, () => {
      for (let round = 0; round < 400; round++) {
        const body = junk();
        const b = (typeof body === 'object' && body !== null && !Array.isArray(body) ? body : {}) as Json;
        const r = t.response(b, 'm');
        assert.equal(r.object, 'chat.completion');
        assert.ok(Array.isArray(r.choices) && (r.choices as unknown[]).length >= (name === 'anthropic' || name === 'ollama' ? 1 : 0));
        t.usage(b);
        const status = pick([200, 400, 401, 404, 429, 500, 529, 0]);
        const e = t.error(status, Buffer.from(JSON.stringify(body)));
        assert.ok(e.status >= 400 && e.status <= 599, `${name}: status ${e.status}`);
        assert.equal(typeof e.body.error.message, 'string');
      }
      const e = t.error(500, Buffer.from([0xff, 0xfe, 0x00, 0x01]));
      assert.equal(e.status, 500);
    });

    it(`${name}: malformed client requests throw only TranslationError`, () => {
      for (let round = 0; round < 400; round++) {
        const messages = rnd(4) === 0 ? junk() : Array.from({ length: rnd(4) }, () => ({ role: pick(['user', 'assistant', 'tool', 'system', 'developer', 'x', 5]), ...(junk() as object) }));
        const body = { messages, tools: rnd(2) ? junk() : undefined, tool_choice: junk(), stop: junk(), n: pick([1, 2, undefined]) } as Json;
        try {
          const r = t.request(body, 'model', rnd(2) === 0);
          assert.equal(typeof r.path, 'string');
        } catch (e) {
          assert.ok(e instanceof TranslationError, `${name} round ${round}: ${String(e)}`);
          assert.equal(e.status, 400);
        }
      }
    });
  }

  it('an upstream line that never ends is cut off with one error, not unbounded memory', () => {
    // The parser drops the line and its event, counts it, and reads on.
    const p = new SseParser({ maxLine: 1000 });
    assert.deepEqual(p.push(Buffer.from('data: ok1\n\nevent: big\ndata: ' + 'x'.repeat(900))), [{ event: undefined, data: 'ok1' }]);
    assert.deepEqual(p.push(Buffer.from('y'.repeat(200))), []);
    assert.equal(p.overlong, 1);
    assert.deepEqual(p.push(Buffer.from('z'.repeat(5000) + '\ndata: same event\n\ndata: ok2\n\n')), [{ event: undefined, data: 'ok2' }]);
    assert.deepEqual(p.push(Buffer.from('data: ' + 'w'.repeat(2000) + '\n\ndata: ok3\n\n')), [{ event: undefined, data: 'ok3' }], 'an over-long line inside one push is dropped too');
    assert.equal(p.overlong, 2);

    for (const [name, t] of translators) {
      const d = t.stream(OPTS);
      const piece = Buffer.alloc(1024 * 1024, 0x61); // 'a' x 1 MiB, no newline
      const out: Json[] = [...d.push(Buffer.from(name === 'ollama' ? '{"message":{"content":"' : 'data: {"x":"'))];
      for (let i = 0; i < 18; i++) out.push(...d.push(piece));
      out.push(...d.end());
      assert.equal(out.length, 1, `${name}: ${JSON.stringify(out).slice(0, 200)}`);
      assert.equal((out[0]!.error as Json).code, 'bad_upstream_event');
    }
  });

  it('messages-inbound: random chunks keep the Anthropic event grammar', () => {
    for (let round = 0; round < 400; round++) {
      const s = new OpenAIToMessagesStream({ model: 'm' });
      // Well-formed chunks of every kind, shuffled with junk.
      const good = (): Json =>
        pick<Json>([
          { choices: [{ index: 0, delta: { content: 'txt' }, finish_reason: null }] },
          { choices: [{ index: 0, delta: { tool_calls: [{ index: rnd(3), id: `call_${rnd(9)}`, type: 'function', function: { name: 'f', arguments: '' } }] }, finish_reason: null }] },
          { choices: [{ index: 0, delta: { tool_calls: [{ index: rnd(3), function: { arguments: '{"a"' } }] }, finish_reason: null }] },
          { choices: [{ index: 0, delta: {}, finish_reason: pick(['stop', 'length', 'tool_calls']) }] },
          { choices: [], usage: { prompt_tokens: 3, completion_tokens: 4 } },
          { error: { message: 'boom', type: 'server_error', param: null, code: null } },
        ]);
      const chunks = Array.from({ length: 1 + rnd(10) }, () => {
        if (rnd(3) > 0) return good();
        const j = junk();
        return (typeof j === 'object' && j !== null && !Array.isArray(j) ? j : {}) as Json;
      });
      const events = [...chunks.flatMap((c) => s.push(c)), ...s.end()];
      assert.ok(events.length > 0);
      // An upstream error before anything else is passed on alone (the Anthropic SDK raises it wherever it comes).
      if (events[0]!.event === 'error') {
        assert.equal(events.length, 1, `round ${round}: events after an error`);
        continue;
      }
      assert.equal(events[0]!.event, 'message_start', `round ${round}`);
      const last = events[events.length - 1]!.event;
      assert.ok(last === 'message_stop' || last === 'error', `round ${round}: ends with ${last}`);
      let open = -1;
      let next = 0;
      for (const e of events.slice(1, -1)) {
        if (e.event === 'content_block_start') {
          assert.equal(open, -1, `round ${round}: a block started while another is open`);
          assert.equal(e.data.index, next++);
          open = e.data.index as number;
        } else if (e.event === 'content_block_stop') {
          assert.equal(e.data.index, open);
          open = -1;
        } else if (e.event === 'content_block_delta') assert.ok((e.data.index as number) < next);
        else assert.equal(e.event, 'message_delta', `round ${round}: unexpected ${e.event}`);
      }
      // An error may interrupt a block (Anthropic's own API does the same); a normal end closes it.
      if (last === 'message_stop') assert.equal(open, -1, `round ${round}: a block left open`);
      if (last === 'message_stop') assert.equal(events.filter((e) => e.event === 'message_delta').length, 1);
      openAIToMessage(chunks[0]!, 'm');
      try {
        messagesToOpenAI(chunks[0]!);
      } catch (e) {
        assert.ok(e instanceof TranslationError, String(e));
      }
    }
  });
});
