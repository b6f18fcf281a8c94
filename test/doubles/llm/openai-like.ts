// A double of the providers that speak OpenAI's chat API, one flavour at a
// time, each with its documented differences (/work/shared/design/ai.md §4):
//
//   flavour     base path                  auth          stream usage
//   openai      /v1                        Bearer        usage chunk (choices: []) only with include_usage; other chunks usage: null
//   azure       /openai/deployments/{d}/…  api-key       as openai; api-version query required; deployment in the path
//   qwen        /compatible-mode/v1        Bearer        as openai
//   deepseek    (none: /chat/completions)  Bearer        as openai; `: keep-alive` SSE comments between events
//   moonshot    /v1                        Bearer        always, in choices[0].usage of the finish chunk
//   zhipu       /api/paas/v4               Bearer        always, top level of the finish chunk; 400 when stream_options is sent
//   mistral     /v1                        Bearer        always, top level of the finish chunk
//   groq        /openai/v1                 Bearer        always, in x_groq.usage of the finish chunk (the older wire)
//   openrouter  /api/v1                    Bearer        as openai; `: OPENROUTER PROCESSING` comments first
//   ollama      /v1                        (ignored)     as openai
//   vllm        /v1                        optional      as openai
//
// What the double answers is chosen by the requested model name, so a test
// drives it through the gateway with nothing but the model it asks for:
//   err-<status>   an error answer in OpenAI's shape (401 invalid_api_key, 404 model_not_found, 429 rate_limit_exceeded, 5xx server_error)
//   tools          a tool call (streamed as fragments: id and name first, then argument pieces)
//   mid-error      two content chunks, then `data: {"error": ...}`, then the end
//   cut            two content chunks, then the connection is destroyed (no [DONE])
//   error-first    200, then `data: {"error": ...}` as the first event
//   hang           never answers (no head)
//   stall          head, then nothing (no first event)
//   no-usage       never reports usage
//   long-<n>       n content chunks
//   slow-<ms>      40 content chunks, ms apart
//   stamp-<n>      n chunks 2 ms apart, each with the time it was written ("t=<ms since epoch>")
//   flood-<n>      n chunks written as fast as the client reads (honours backpressure; counts what it wrote)
//   anything else  echoes the last user message ("echo: <text>") in 3 chunks
// Keys: with `keys` set, any other key gets 401 invalid_api_key.
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export type Flavour = 'openai' | 'azure' | 'qwen' | 'deepseek' | 'moonshot' | 'zhipu' | 'mistral' | 'groq' | 'openrouter' | 'ollama' | 'vllm';

type Json = Record<string, any>;

export interface Received {
  method: string;
  /** Path with query, as received. */
  url: string;
  headers: http.IncomingHttpHeaders;
  body: Json | undefined;
  /** The key the request carried (Bearer token or api-key). */
  key: string | undefined;
}

export interface LlmDouble {
  readonly flavour: Flavour;
  readonly port: number;
  /** The base URL this provider's own SDK takes (what `baseUrl:` is set to). */
  readonly baseUrl: string;
  readonly received: Received[];
  /** Streams whose client went away before the double finished writing. */
  closedEarly: number;
  /** flood-<n>: chunks written so far. */
  flooded: number;
  /** Valid keys (undefined: any). */
  keys: string[] | undefined;
  /** Extra behaviour for the next requests: answered first, in order (status + OpenAI error). */
  failNext: Array<{ status: number; message?: string }>;
  chatCount(): number;
  stop(): Promise<void>;
}

const PREFIX: Record<Flavour, string> = {
  openai: '/v1',
  azure: '/openai',
  qwen: '/compatible-mode/v1',
  deepseek: '',
  moonshot: '/v1',
  zhipu: '/api/paas/v4',
  mistral: '/v1',
  groq: '/openai/v1',
  openrouter: '/api/v1',
  ollama: '/v1',
  vllm: '/v1',
};

const ERROR_CODES: Record<number, [string, string]> = {
  400: ['invalid_request_error', 'bad_request'],
  401: ['invalid_request_error', 'invalid_api_key'],
  403: ['permission_error', 'forbidden'],
  404: ['invalid_request_error', 'model_not_found'],
  429: ['requests', 'rate_limit_exceeded'],
};

function errorBody(status: number, message?: string): string {
  const [type, code] = ERROR_CODES[status] ?? ['server_error', 'server_error'];
  return JSON.stringify({ error: { message: message ?? `double says ${status}`, type, param: null, code } });
}

function lastUserText(body: Json): string {
  const msgs = Array.isArray(body.messages) ? body.messages : [];
  for (let i = msgs.length - 1; i >= 0; i--) {
    const m = msgs[i];
    if (m?.role === 'user') return typeof m.content === 'string' ? m.content : JSON.stringify(m.content);
  }
  return '';
}

export async function startOpenAILikeDouble(flavour: Flavour = 'openai', opts: { keys?: string[] } = {}): Promise<LlmDouble> {
  const prefix = PREFIX[flavour];
  const sockets = new Set<import('node:net').Socket>();
  const d: LlmDouble = {
    flavour,
    port: 0,
    baseUrl: '',
    received: [],
    closedEarly: 0,
    flooded: 0,
    keys: opts.keys,
    failNext: [],
    chatCount: () => d.received.filter((r) => r.url.includes('/chat/completions')).length,
    stop: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };

  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      let body: Json | undefined;
      try {
        body = chunks.length ? (JSON.parse(Buffer.concat(chunks).toString('utf8')) as Json) : undefined;
      } catch {
        body = undefined;
      }
      const key = flavour === 'azure' ? (req.headers['api-key'] as string | undefined) : req.headers.authorization?.replace(/^Bearer /, '');
      d.received.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body, key });
      route(req, res, body, key);
    });
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });

  function send(res: http.ServerResponse, status: number, body: string, headers: Record<string, string> = {}): void {
    res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), ...headers });
    res.end(body);
  }

  function route(req: http.IncomingMessage, res: http.ServerResponse, body: Json | undefined, key: string | undefined): void {
    const url = new URL(req.url ?? '/', 'http://x');
    let path = url.pathname;
    if (!path.startsWith(prefix + '/')) return send(res, 404, errorBody(404, `no route ${path}`));
    path = path.slice(prefix.length);
    if (flavour === 'azure') {
      if (!url.searchParams.get('api-version')) return send(res, 404, JSON.stringify({ error: { code: '404', message: 'Resource not found' } }));
    }
    if (d.keys && flavour !== 'ollama' && (!key || !d.keys.includes(key))) return send(res, 401, errorBody(401, 'Incorrect API key provided'));
    if (req.method === 'GET' && path === '/models') {
      return send(res, 200, JSON.stringify({ object: 'list', data: [{ id: 'double-model', object: 'model', created: 1, owned_by: flavour }] }));
    }
    if (req.method !== 'POST' || !body) return send(res, 400, errorBody(400, 'expected a JSON POST'));
    const fail = d.failNext.shift();
    if (fail) return send(res, fail.status, errorBody(fail.status, fail.message));
    let model: string = body.model;
    let endpoint = path;
    if (flavour === 'azure') {
      const m = /^\/deployments\/([^/]+)(\/.*)$/.exec(path);
      if (!m) return send(res, 404, errorBody(404));
      model = decodeURIComponent(m[1]!);
      endpoint = m[2]!;
    }
    if (endpoint === '/chat/completions') return chat(req, res, body, model);
    if (endpoint === '/embeddings') return embeddings(res, body, model);
    if (endpoint === '/responses') return responses(res, body, model);
    return send(res, 404, errorBody(404, `no route ${path}`));
  }

  function usageOf(body: Json, out: string): Json {
    const input = JSON.stringify(body.messages ?? body.input ?? '').length >> 2 || 1;
    const output = out.length >> 2 || 1;
    return { prompt_tokens: input, completion_tokens: output, total_tokens: input + output };
  }

  function errorFor(model: string): number | undefined {
    const m = /^err-(\d{3})$/.exec(model);
    return m ? Number(m[1]) : undefined;
  }

  function chat(req: http.IncomingMessage, res: http.ServerResponse, body: Json, model: string): void {
    const status = errorFor(model);
    if (status) return send(res, status, errorBody(status), status === 429 ? { 'retry-after': '1' } : {});
    if (model === 'hang') {
      // Never answers; a caller that gives up is seen closing.
      res.on('close', () => d.closedEarly++);
      return;
    }
    if (flavour === 'zhipu' && body.stream_options !== undefined) return send(res, 400, JSON.stringify({ error: { code: '1214', message: 'stream_options is not supported' } }));
    const id = `chatcmpl-${Math.random().toString(36).slice(2, 10)}`;
    const created = Math.floor(Date.now() / 1000);
    const text = `echo: ${lastUserText(body)}`;
    const tools = model === 'tools';
    const toolArgs = JSON.stringify({ city: 'Paris', unit: 'celsius' });
    if (body.stream !== true) {
      const message: Json = tools
        ? { role: 'assistant', content: null, tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'get_weather', arguments: toolArgs } }] }
        : { role: 'assistant', content: text, refusal: null };
      const out: Json = { id, object: 'chat.completion', created, model, choices: [{ index: 0, message, logprobs: null, finish_reason: tools ? 'tool_calls' : 'stop' }] };
      if (model !== 'no-usage') out.usage = usageOf(body, tools ? toolArgs : text);
      return send(res, 200, JSON.stringify(out));
    }
    const includeUsage = body.stream_options?.include_usage === true;
    const usage = usageOf(body, tools ? toolArgs : text);
    const base = { id, object: 'chat.completion.chunk', created, model };
    const chunk = (delta: Json, finish: string | null = null): Json => {
      const c: Json = { ...base, choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }] };
      if (includeUsage && ['openai', 'azure', 'qwen', 'deepseek', 'openrouter', 'ollama', 'vllm'].includes(flavour)) c.usage = null;
      return c;
    };
    const events: Array<Json | string> = [];
    if (flavour === 'openrouter') events.push(': OPENROUTER PROCESSING');
    events.push(chunk({ role: 'assistant', content: '' }));
    let pieces: string[];
    const long = /^long-(\d+)$/.exec(model);
    const flood = /^flood-(\d+)$/.exec(model);
    if (long) pieces = Array.from({ length: Number(long[1]) }, (_, i) => `w${i} `);
    else if (/^slow-\d+$/.test(model)) pieces = Array.from({ length: 40 }, (_, i) => `s${i} `);
    else if (/^stamp-\d+$/.test(model)) pieces = Array.from({ length: Number(model.slice(6)) }, () => 'STAMP');
    else pieces = [text.slice(0, 4), text.slice(4, 9), text.slice(9)].filter((s) => s.length > 0);
    if (model === 'error-first') {
      events.length = 0;
      events.push({ error: { message: 'overloaded, try later', type: 'server_error', code: 503 } });
    } else if (tools) {
      events.push(chunk({ tool_calls: [{ index: 0, id: 'call_1', type: 'function', function: { name: 'get_weather', arguments: '' } }] }));
      for (let i = 0; i < toolArgs.length; i += 7) events.push(chunk({ tool_calls: [{ index: 0, function: { arguments: toolArgs.slice(i, i + 7) } }] }));
    } else if (!flood) {
      for (const p of pieces) {
        events.push(chunk({ content: p }));
        if (flavour === 'deepseek') events.push(': keep-alive');
      }
    }
    if (model === 'mid-error') {
      events.splice(3);
      events.push({ error: { message: 'the model crashed', type: 'server_error', param: null, code: null } });
    }
    const finishReason = tools ? 'tool_calls' : 'stop';
    const finish = chunk({}, finishReason);
    const reportUsage = model !== 'no-usage';
    if (reportUsage) {
      if (flavour === 'moonshot') finish.choices[0].usage = usage;
      else if (flavour === 'mistral' || flavour === 'zhipu') finish.usage = usage;
      else if (flavour === 'groq') finish.x_groq = { id: 'req_1', usage };
    }
    const tail: Array<Json | string> = [finish];
    if (reportUsage && includeUsage && !['moonshot', 'mistral', 'zhipu', 'groq'].includes(flavour)) tail.push({ ...base, choices: [], usage });
    tail.push('[DONE]');
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
    res.flushHeaders();
    let finished = false;
    res.on('close', () => {
      if (!finished) d.closedEarly++;
    });
    if (model === 'stall') return;
    const frame = (e: Json | string): string => (typeof e === 'string' ? (e.startsWith(':') ? `${e}\n\n` : `data: ${e}\n\n`) : `data: ${JSON.stringify(e)}\n\n`);
    const slow = /^slow-(\d+)$/.exec(model);
    const gap = slow ? Number(slow[1]) : model.startsWith('stamp-') ? 2 : 0;
    if (flood) {
      const n = Number(flood[1]);
      const pad = 'x'.repeat(1024);
      let i = 0;
      const pump = (): void => {
        while (i < n) {
          if (res.destroyed) return;
          const ok = res.write(frame(chunk({ content: `${i} ${pad}` })));
          i++;
          d.flooded = i;
          if (!ok) {
            res.once('drain', pump);
            return;
          }
        }
        for (const e of tail) res.write(frame(e));
        finished = true;
        res.end();
      };
      res.write(frame(events[0]!));
      pump();
      return;
    }
    const all = [...events, ...(model === 'mid-error' || model === 'error-first' ? [] : tail)];
    let i = 0;
    const next = (): void => {
      if (res.destroyed) return;
      if (model === 'cut' && i === 3) {
        finished = true;
        res.socket?.destroy();
        return;
      }
      if (i >= all.length) {
        finished = true;
        res.end();
        return;
      }
      // CRLF line ends from some flavours, to keep the parser honest.
      let f = frame(all[i++]!);
      // stamp-<n>: each content chunk carries the wall-clock time it was written (ms, sub-ms precision), 2 ms apart.
      if (f.includes('"STAMP"')) f = f.replace('"STAMP"', `"t=${(performance.timeOrigin + performance.now()).toFixed(3)}"`);
      if (flavour === 'qwen') f = f.replace(/\n/g, '\r\n');
      res.write(f);
      if (gap > 0) setTimeout(next, gap);
      else setImmediate(next);
    };
    next();
  }

  function embeddings(res: http.ServerResponse, body: Json, model: string): void {
    const status = errorFor(model);
    if (status) return send(res, status, errorBody(status));
    const inputs: unknown[] = Array.isArray(body.input) ? body.input : [body.input];
    const data = inputs.map((inp, index) => {
      const s = String(inp);
      const vec = [s.length, index + 0.5, -1.25, 0.1];
      const embedding = body.encoding_format === 'base64' ? Buffer.from(new Float32Array(vec).buffer).toString('base64') : vec;
      return { object: 'embedding', index, embedding };
    });
    const tokens = inputs.reduce<number>((s, i) => s + (String(i).length >> 2 || 1), 0);
    send(res, 200, JSON.stringify({ object: 'list', data, model, usage: { prompt_tokens: tokens, total_tokens: tokens } }));
  }

  function responses(res: http.ServerResponse, body: Json, model: string): void {
    const status = errorFor(model);
    if (status) return send(res, status, errorBody(status));
    const text = `echo: ${typeof body.input === 'string' ? body.input : JSON.stringify(body.input)}`;
    const usage = { input_tokens: 7, output_tokens: 5, total_tokens: 12 };
    const resp = { id: 'resp_1', object: 'response', created_at: 1, status: 'completed', model, output: [{ type: 'message', id: 'msg_1', status: 'completed', role: 'assistant', content: [{ type: 'output_text', text, annotations: [] }] }], usage };
    if (body.stream !== true) return send(res, 200, JSON.stringify(resp));
    res.writeHead(200, { 'content-type': 'text/event-stream' });
    const ev = (name: string, data: Json): string => `event: ${name}\ndata: ${JSON.stringify({ type: name, ...data })}\n\n`;
    res.write(ev('response.created', { response: { ...resp, status: 'in_progress', output: [], usage: null } }));
    res.write(ev('response.output_text.delta', { item_id: 'msg_1', output_index: 0, content_index: 0, delta: text }));
    res.end(ev('response.completed', { response: resp }));
  }

  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const port = (server.address() as AddressInfo).port;
  (d as { port: number }).port = port;
  (d as { baseUrl: string }).baseUrl = `http://127.0.0.1:${port}${prefix}`;
  return d;
}
