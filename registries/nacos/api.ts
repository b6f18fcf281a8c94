// The Nacos v1 Open API calls the gateway makes itself (service list, direct
// instance list, login), and the HTTP transport handed to the `nacos` npm
// client so that its requests carry the same access token and go through the
// same keep-alive pool.
//
// Auth: a configured accessToken is sent as is; with username/password we log
// in (POST /nacos/v1/auth/login) and send the token we get, refreshing it
// before tokenTtl runs out and once more when the server answers 403.
import { Agent, request } from 'undici';
import { BadAnswer, parseServiceList } from './parse.js';

export interface NacosApiOptions {
  servers: string[];
  namespace: string;
  username?: string;
  password?: string;
  accessToken?: string;
  timeoutMs?: number;
}

/**
 * A login answer: its accessToken, and when to log in again (at 90 % of
 * tokenTtl, 5 hours when it gives none). `wrapped`: the token may also sit in
 * `data` (Nacos 3's `/nacos/v3/auth/user/login`). Throws BadAnswer.
 */
export function loginAnswer(text: string, wrapped: boolean): { token: string; refreshAt: number } {
  type Login = { accessToken?: unknown; tokenTtl?: unknown };
  let doc: Login & { data?: Login };
  try {
    doc = JSON.parse(text) as typeof doc;
  } catch {
    throw new BadAnswer('login answer is not JSON');
  }
  const d: Login = wrapped && typeof doc.accessToken !== 'string' ? (doc.data ?? {}) : doc;
  if (typeof d.accessToken !== 'string' || !d.accessToken) throw new BadAnswer('login answer has no accessToken');
  const ttlSec = Number(d.tokenTtl) > 0 ? Number(d.tokenTtl) : 18000;
  return { token: d.accessToken, refreshAt: Date.now() + ttlSec * 900 };
}

export class NacosHttpError extends Error {
  constructor(
    message: string,
    readonly status: number,
  ) {
    super(message);
    this.name = 'NacosHttpError';
  }
}

const SERVICE_PAGE = 500;

export class NacosApi {
  readonly agent: Agent;
  private token: string | undefined;
  private tokenRefreshAt = 0;
  private next = 0;
  private readonly timeout: number;

  constructor(private readonly opts: NacosApiOptions) {
    this.timeout = opts.timeoutMs ?? 5000;
    this.agent = new Agent({ connections: 16, keepAliveTimeout: 30_000, headersTimeout: this.timeout, bodyTimeout: this.timeout, connectTimeout: this.timeout });
    this.token = opts.accessToken;
  }

  close(): Promise<void> {
    return this.agent.close();
  }

  private get loginEnabled(): boolean {
    return !this.opts.accessToken && !!this.opts.username && this.opts.password !== undefined;
  }

  /** Log in when we have credentials and no fresh token. */
  async ensureToken(force = false): Promise<void> {
    if (!this.loginEnabled) return;
    if (!force && this.token && Date.now() < this.tokenRefreshAt) return;
    const body = new URLSearchParams({ username: this.opts.username!, password: this.opts.password! }).toString();
    const login = loginAnswer(await this.call('POST', '/nacos/v1/auth/login', undefined, body, false), false);
    this.token = login.token;
    this.tokenRefreshAt = login.refreshAt;
  }

  /** Parameters every naming request carries: namespace and credentials. */
  authParams(params: Record<string, string>): Record<string, string> {
    const out = { ...params };
    if (this.token) out.accessToken = this.token;
    else if (this.opts.username && this.opts.password !== undefined) {
      out.username = this.opts.username;
      out.password = this.opts.password;
    }
    return out;
  }

  /**
   * One call, trying each server in turn (starting where the last success was).
   * Answers other than 200 are errors; a 403 with login configured re-logs in once.
   */
  private async call(method: string, path: string, params: Record<string, string> | undefined, body?: string, auth = true): Promise<string> {
    let lastErr: unknown;
    for (let attempt = 0; attempt < 2; attempt++) {
      const qs = params ? `?${new URLSearchParams(auth ? this.authParams(params) : params).toString()}` : '';
      for (let i = 0; i < this.opts.servers.length; i++) {
        const idx = (this.next + i) % this.opts.servers.length;
        const server = this.opts.servers[idx]!;
        try {
          const res = await request(`http://${server}${path}${qs}`, {
            method: method as 'GET',
            dispatcher: this.agent,
            headers: body ? { 'content-type': 'application/x-www-form-urlencoded' } : undefined,
            body,
          });
          const text = await res.body.text();
          if (res.statusCode === 200) {
            this.next = idx;
            return text;
          }
          lastErr = new NacosHttpError(`${method} ${path} on ${server}: HTTP ${res.statusCode} ${text.slice(0, 200)}`, res.statusCode);
          if (res.statusCode === 403) break; // same credentials on every server
        } catch (err) {
          lastErr = err;
        }
      }
      if (auth && this.loginEnabled && lastErr instanceof NacosHttpError && lastErr.status === 403 && attempt === 0) {
        await this.ensureToken(true);
        continue;
      }
      break;
    }
    throw lastErr instanceof Error ? lastErr : new Error(String(lastErr));
  }

  async get(path: string, params: Record<string, string>): Promise<string> {
    await this.ensureToken();
    return this.call('GET', path, { namespaceId: this.opts.namespace, ...params });
  }

  /** Every service name of `group`, a page at a time: `onPage` runs as each page arrives. */
  async eachServicePage(group: string, onPage: (names: readonly string[]) => void): Promise<void> {
    let seen = 0;
    for (let page = 1; ; page++) {
      const text = await this.get('/nacos/v1/ns/service/list', { pageNo: String(page), pageSize: String(SERVICE_PAGE), groupName: group });
      const { count, doms } = parseServiceList(text);
      onPage(doms);
      seen += doms.length;
      if (doms.length === 0 || seen >= count || doms.length < SERVICE_PAGE) break;
    }
  }

  /** The raw ServiceInfo JSON of one service. */
  instanceList(groupedName: string, clusters: string): Promise<string> {
    return this.get('/nacos/v1/ns/instance/list', { serviceName: groupedName, clusters, healthyOnly: 'false', udpPort: '0' });
  }

  /**
   * A transport with the interface the npm client expects of `urllib`
   * (request(url, {method, headers, data, dataAsQueryString})), adding our
   * token and using our connection pool.
   */
  httpClient() {
    return {
      request: async (url: string, opts: { method?: string; headers?: Record<string, string>; data?: Record<string, string>; timeout?: number }) => {
        await this.ensureToken();
        const u = new URL(url);
        const params = this.authParams(Object.fromEntries(Object.entries(opts.data ?? {}).filter(([, v]) => v !== undefined && v !== null).map(([k, v]) => [k, String(v)])));
        for (const [k, v] of Object.entries(params)) u.searchParams.set(k, v);
        // undici neither sends Connection headers nor decompresses: drop both.
        const headers: Record<string, string> = {};
        for (const [k, v] of Object.entries(opts.headers ?? {})) {
          const lk = k.toLowerCase();
          if (lk !== 'connection' && lk !== 'accept-encoding') headers[k] = v;
        }
        const res = await request(u, { method: (opts.method ?? 'GET') as 'GET', dispatcher: this.agent, headers });
        const data = await res.body.text();
        return { status: res.statusCode, data, headers: res.headers };
      },
    };
  }
}
