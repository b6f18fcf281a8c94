// One logical connection to a Nacos cluster over its gRPC protocol (2.x/3.x),
// as Nacos' own GrpcClient/RpcClient does it:
//
// 1. unary ServerCheckRequest on a fresh channel -> ServerCheckResponse {connectionId}
// 2. open the BiRequestStream on that channel and send ConnectionSetupRequest
//    {clientVersion, tenant, labels, abilityTable}; a server that negotiates
//    abilities (supportAbilityNegotiation) answers with SetupAckRequest.
// 3. unary requests (Request/request) on the same channel: the server knows
//    the connection by it; until setup has registered it the server answers
//    ErrorResponse 301 ("unregistered"), retried here a few times.
// 4. the server's requests on the stream (NotifySubscriberRequest,
//    ClientDetectionRequest, SetupAckRequest, ConnectResetRequest) are answered
//    on the stream with the same requestId.
// 5. HealthCheckRequest every healthIntervalMs; a failed check, a stream that
//    ends, or ConnectResetRequest drops the connection and reconnects, to the
//    next server of the list (failover), with backoff.
import * as grpc from '@grpc/grpc-js';
import { BI_STREAM_PATH, CodecError, deserializePayload, jsonPayload, payloadJson, REQUEST_PATH, serializePayload, type Payload } from './codec.js';

export const CLIENT_VERSION = 'Nacos-JS-Client:meshgate-2.0';

export class NacosGrpcError extends Error {
  constructor(
    message: string,
    readonly errorCode: number,
  ) {
    super(message);
    this.name = 'NacosGrpcError';
  }
}

export interface ConnectionOptions {
  /** gRPC addresses host:port, in failover order. */
  servers: string[];
  namespace: string;
  /** Labels sent in ConnectionSetupRequest. */
  labels?: Record<string, string>;
  requestTimeoutMs?: number;
  healthIntervalMs?: number;
  /** Headers for every request (accessToken); may log in first. */
  authHeaders?: (force: boolean) => Promise<Record<string, string>>;
  /** A request the server sent on the stream; the answer (a response body) or undefined for a plain ack. */
  onServerRequest?: (type: string, body: Record<string, unknown>) => void;
  onConnected?: (server: string, connectionId: string) => void;
  onDisconnected?: (reason: string) => void;
  log?: (level: 'debug' | 'warn', msg: string, extra?: Record<string, unknown>) => void;
}

let seq = 0;
const nextRequestId = (): string => `mg-${process.pid}-${++seq}`;

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms).unref());

interface Live {
  client: grpc.Client;
  stream: grpc.ClientDuplexStream<Payload, Payload>;
  server: string;
  connectionId: string;
  closed: boolean;
}

export class NacosGrpcConnection {
  private live: Live | undefined;
  private stopped = true;
  private next = 0;
  private healthTimer: NodeJS.Timeout | undefined;
  private loop: Promise<void> | undefined;
  private wake: (() => void) | undefined;
  private readonly timeout: number;
  private readonly healthInterval: number;
  private waiters: Array<() => void> = [];
  lastError: string | undefined;
  connects = 0;

  constructor(private readonly opts: ConnectionOptions) {
    this.timeout = opts.requestTimeoutMs ?? 3000;
    this.healthInterval = opts.healthIntervalMs ?? 5000;
  }

  get connected(): boolean {
    return !!this.live && !this.live.closed;
  }

  get server(): string | undefined {
    return this.live?.server;
  }

  /** Start connecting (in the background; returns at once). */
  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    this.loop = this.run();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.wake?.();
    this.drop('stopped', false);
    await this.loop?.catch(() => {});
  }

  /** Resolves when connected (or rejects after timeoutMs). */
  waitConnected(timeoutMs: number): Promise<void> {
    if (this.connected) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== done);
        reject(new Error(`not connected to nacos (${this.lastError ?? 'connecting'})`));
      }, timeoutMs);
      const done = () => {
        clearTimeout(t);
        resolve();
      };
      this.waiters.push(done);
    });
  }

  private log(level: 'debug' | 'warn', msg: string, extra?: Record<string, unknown>): void {
    this.opts.log?.(level, msg, extra);
  }

  /** Connect, then wait until the connection drops; again, until stopped. */
  private async run(): Promise<void> {
    let failures = 0;
    while (!this.stopped) {
      const server = this.opts.servers[this.next % this.opts.servers.length]!;
      try {
        await this.connect(server);
        failures = 0;
        await new Promise<void>((resolve) => {
          this.wake = resolve;
          if (!this.connected || this.stopped) resolve();
        });
        this.wake = undefined;
      } catch (err) {
        failures++;
        this.lastError = `${server}: ${err instanceof Error ? err.message : String(err)}`;
        this.log('debug', 'nacos grpc connect failed', { server, err: this.lastError });
        if (failures === 1) this.opts.onDisconnected?.(this.lastError);
      }
      if (this.stopped) break;
      // the next server (failover); a pause once every server failed in a row
      this.next = (this.next + 1) % this.opts.servers.length;
      if (failures > 0 && failures % this.opts.servers.length === 0) await sleep(Math.min(200 * 2 ** Math.min(failures / this.opts.servers.length, 5), 3000));
    }
  }

  private unary(client: grpc.Client, payload: Payload, timeoutMs: number): Promise<Payload> {
    return new Promise((resolve, reject) => {
      client.makeUnaryRequest(REQUEST_PATH, serializePayload, deserializePayload, payload, { deadline: Date.now() + timeoutMs }, (err, res) => {
        if (err || !res) reject(err ?? new Error('empty answer'));
        else resolve(res);
      });
    });
  }

  private async connect(server: string): Promise<void> {
    const client = new grpc.Client(server, grpc.credentials.createInsecure(), {
      'grpc.keepalive_time_ms': 30_000,
      'grpc.max_receive_message_length': 64 * 1024 * 1024,
      'grpc.enable_retries': 0,
    });
    try {
      const headers = await this.headers(false);
      const check = await this.unary(client, jsonPayload('ServerCheckRequest', { headers: {}, requestId: nextRequestId(), module: 'internal' }, headers), this.timeout);
      const checkBody = payloadJson(check);
      if (check.type !== 'ServerCheckResponse' || Number(checkBody.resultCode) !== 200) {
        throw new NacosGrpcError(`server check refused: ${check.type} ${String(checkBody.message ?? '')}`, Number(checkBody.errorCode) || 0);
      }
      const connectionId = String(checkBody.connectionId ?? '');
      const negotiates = checkBody.supportAbilityNegotiation === true;
      const stream = client.makeBidiStreamRequest(BI_STREAM_PATH, serializePayload, deserializePayload);
      const live: Live = { client, stream, server, connectionId, closed: false };
      let acked: (() => void) | undefined;
      const ackSeen = new Promise<void>((r) => (acked = r));
      stream.on('data', (p: Payload) => this.onStreamPayload(live, p, () => acked?.()));
      stream.on('error', (err: Error) => this.onStreamEnd(live, `stream error: ${err.message}`));
      stream.on('end', () => this.onStreamEnd(live, 'stream ended by server'));
      stream.write(
        jsonPayload(
          'ConnectionSetupRequest',
          {
            headers: {},
            module: 'internal',
            clientVersion: CLIENT_VERSION,
            tenant: this.opts.namespace,
            labels: { source: 'sdk', module: 'naming', AppName: 'meshgate', ...this.opts.labels },
            // present (even empty): this client takes part in ability negotiation (SetupAckRequest)
            abilityTable: {},
          },
          headers,
        ),
      );
      // With ability negotiation the server acks the setup; else give it a moment (as the Java client does).
      await Promise.race([negotiates ? ackSeen : sleep(100), sleep(negotiates ? 3000 : 100)]);
      if (live.closed) throw new Error(this.lastError ?? 'stream closed during setup');
      // A first health check confirms the server registered the connection.
      await this.requestOn(live, 'HealthCheckRequest', { module: 'internal' });
      if (this.stopped) throw new Error('stopped');
      this.live = live;
      this.connects++;
      this.lastError = undefined;
      this.startHealth(live);
      this.log('debug', 'nacos grpc connected', { server, connectionId });
      for (const w of this.waiters.splice(0)) w();
      this.opts.onConnected?.(server, connectionId);
    } catch (err) {
      client.close();
      throw err;
    }
  }

  private startHealth(live: Live): void {
    if (this.healthTimer) clearInterval(this.healthTimer);
    this.healthTimer = setInterval(() => {
      if (live.closed) return;
      this.requestOn(live, 'HealthCheckRequest', { module: 'internal' }).catch((err: Error) => {
        if (!live.closed) this.drop(`health check failed: ${err.message}`, true, live);
      });
    }, this.healthInterval);
    this.healthTimer.unref();
  }

  private onStreamEnd(live: Live, reason: string): void {
    if (live.closed) return;
    this.lastError = `${live.server}: ${reason}`;
    this.drop(this.lastError, true, live);
  }

  /** Close the live connection (or the given one) and tell the owner. */
  private drop(reason: string, notify: boolean, which?: Live): void {
    const live = which ?? this.live;
    if (!live || live.closed) return;
    live.closed = true;
    if (this.live === live) this.live = undefined;
    if (this.healthTimer) clearInterval(this.healthTimer);
    try {
      live.stream.cancel();
    } catch {
      // already gone
    }
    live.client.close();
    this.lastError = reason;
    if (notify && !this.stopped) this.opts.onDisconnected?.(reason);
    this.wake?.();
  }

  private onStreamPayload(live: Live, p: Payload, setupAcked: () => void): void {
    let body: Record<string, unknown>;
    try {
      body = payloadJson(p);
    } catch (err) {
      this.log('warn', 'nacos grpc: unreadable payload on the stream', { type: p.type, err: (err as Error).message });
      return;
    }
    const requestId = body.requestId;
    // Nacos serializes with Jackson NON_NULL: absent rather than null
    const answer = (type: string, extra: Record<string, unknown> = {}) => {
      if (live.closed) return;
      live.stream.write(jsonPayload(type, { resultCode: 200, errorCode: 0, requestId, success: true, ...extra }));
    };
    switch (p.type) {
      case 'SetupAckRequest':
        answer('SetupAckResponse');
        setupAcked();
        return;
      case 'ClientDetectionRequest':
        answer('ClientDetectionResponse');
        return;
      case 'ConnectResetRequest':
        answer('ConnectResetResponse');
        // The server asks us to go elsewhere (or reconnect): do so.
        setImmediate(() => this.drop('server asked to reset the connection', true, live));
        return;
      case 'NotifySubscriberRequest':
        try {
          this.opts.onServerRequest?.(p.type, body);
        } finally {
          answer('NotifySubscriberResponse');
        }
        return;
      default:
        if (p.type.endsWith('Request')) {
          try {
            this.opts.onServerRequest?.(p.type, body);
          } catch {
            // the owner's problem; still answer
          }
          answer(p.type.replace(/Request$/, 'Response'));
        }
    }
  }

  private async headers(force: boolean): Promise<Record<string, string>> {
    return this.opts.authHeaders ? await this.opts.authHeaders(force) : {};
  }

  private async requestOn(live: Live, type: string, fields: Record<string, unknown>): Promise<Record<string, unknown>> {
    let relogged = false;
    for (let attempt = 0; ; attempt++) {
      const headers = await this.headers(false);
      const res = await this.unary(live.client, jsonPayload(type, { headers: {}, requestId: nextRequestId(), ...fields }, headers), this.timeout);
      const body = payloadJson(res);
      if (Number(body.resultCode) === 200) return body;
      const code = Number(body.errorCode) || 0;
      // 301: the connection is not registered yet (setup in flight)
      if (code === 301 && attempt < 10 && !live.closed) {
        await sleep(50 * (attempt + 1));
        continue;
      }
      // 403: token refused or expired: log in again, once
      if (code === 403 && !relogged && this.opts.authHeaders) {
        relogged = true;
        await this.headers(true);
        continue;
      }
      throw new NacosGrpcError(`${type}: ${res.type} ${code} ${String(body.message ?? '')}`, code);
    }
  }

  /** One request on the live connection; throws when not connected or refused. */
  async request(type: string, fields: Record<string, unknown>): Promise<Record<string, unknown>> {
    const live = this.live;
    if (!live || live.closed) throw new Error(`not connected to nacos (${this.lastError ?? 'connecting'})`);
    try {
      return await this.requestOn(live, type, fields);
    } catch (err) {
      if (err instanceof CodecError) throw err;
      // a transport failure (not a refusal) means the connection is gone
      if (!(err instanceof NacosGrpcError) && (err as { code?: number }).code !== undefined && (err as { code?: number }).code !== grpc.status.DEADLINE_EXCEEDED) {
        this.drop(`request failed: ${(err as Error).message}`, true, live);
      }
      throw err;
    }
  }
}

/** Whether a Nacos gRPC server answers ServerCheck at one of these addresses (for protocol: auto). */
export async function probeGrpc(servers: string[], timeoutMs: number): Promise<boolean> {
  for (const server of servers) {
    const client = new grpc.Client(server, grpc.credentials.createInsecure());
    try {
      const ok = await new Promise<boolean>((resolve) => {
        client.makeUnaryRequest(
          REQUEST_PATH,
          serializePayload,
          deserializePayload,
          jsonPayload('ServerCheckRequest', { headers: {}, requestId: nextRequestId(), module: 'internal' }),
          { deadline: Date.now() + timeoutMs },
          (err, res) => resolve(!err && res?.type === 'ServerCheckResponse'),
        );
      });
      if (ok) return true;
    } finally {
      client.close();
    }
  }
  return false;
}
