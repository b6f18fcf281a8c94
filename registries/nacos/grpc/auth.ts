// Access token for the gRPC protocol: a configured accessToken as is, or a
// login with username/password over the HTTP API (2.x: POST
// /nacos/v1/auth/login; 3.x, whose v1 API is gone: POST
// /nacos/v3/auth/user/login), refreshed at 90 % of tokenTtl and again when
// the server refuses the token (403). Sent as metadata.headers.accessToken.
import { request } from 'undici';
import { loginAnswer } from '../api.js';
import { BadAnswer } from '../parse.js';

export interface AuthOptions {
  /** HTTP addresses host:port, as configured. */
  servers: string[];
  username?: string;
  password?: string;
  accessToken?: string;
  timeoutMs?: number;
}


const LOGIN_PATHS = ['/nacos/v1/auth/login', '/nacos/v3/auth/user/login'];

export class GrpcAuth {
  private token: string | undefined;
  private refreshAt = 0;
  private pending: Promise<void> | undefined;
  logins = 0;

  constructor(private readonly opts: AuthOptions) {
    this.token = opts.accessToken;
  }

  get enabled(): boolean {
    return !!this.opts.accessToken || (!!this.opts.username && this.opts.password !== undefined);
  }

  private get loginEnabled(): boolean {
    return !this.opts.accessToken && !!this.opts.username && this.opts.password !== undefined;
  }

  async headers(force: boolean): Promise<Record<string, string>> {
    if (this.loginEnabled && (force || !this.token || Date.now() >= this.refreshAt)) {
      this.pending ??= this.login().finally(() => (this.pending = undefined));
      await this.pending;
    }
    return this.token ? { accessToken: this.token } : {};
  }

  private async login(): Promise<void> {
    const body = new URLSearchParams({ username: this.opts.username!, password: this.opts.password! }).toString();
    let lastErr: unknown;
    for (const server of this.opts.servers) {
      for (const path of LOGIN_PATHS) {
        try {
          const res = await request(`http://${server}${path}`, {
            method: 'POST',
            headers: { 'content-type': 'application/x-www-form-urlencoded' },
            body,
            headersTimeout: this.opts.timeoutMs ?? 5000,
            bodyTimeout: this.opts.timeoutMs ?? 5000,
          });
          const text = await res.body.text();
          if (res.statusCode !== 200) {
            // 2.x has only the v1 path, 3.2 only the v3 one: try the other before giving up
            lastErr = new Error(`login (${path}) on ${server}: HTTP ${res.statusCode} ${text.slice(0, 200)}`);
            continue;
          }
          const login = loginAnswer(text, true);
          this.token = login.token;
          this.refreshAt = login.refreshAt;
          this.logins++;
          return;
        } catch (err) {
          lastErr = err;
          if (!(err instanceof BadAnswer)) break; // unreachable: next server
        }
      }
    }
    throw lastErr instanceof Error ? lastErr : new Error(String(lastErr));
  }
}
