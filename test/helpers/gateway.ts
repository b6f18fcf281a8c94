// Start a Gateway in-process for tests, with logs silenced.
import pino from 'pino';
import { Gateway } from '../../src/gateway.js';
import type { ConfigInput } from '../../src/config/schema.js';
import type { AccessLogSink } from '../../src/observability/logger.js';

export const quietLog = pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });

/** Config defaults for tests: listener and admin on free ports. */
export function testConfig(partial: Partial<ConfigInput>): ConfigInput {
  return {
    listeners: [{ name: 'public', address: '127.0.0.1:0', protocol: 'http' }],
    admin: { address: '127.0.0.1:0' },
    ...partial,
  } as ConfigInput;
}

export async function startGateway(config: Partial<ConfigInput> | string, opts: { accessLog?: AccessLogSink | false; configPath?: string } = {}): Promise<Gateway> {
  return Gateway.start({
    config: typeof config === 'string' ? config : testConfig(config),
    log: quietLog,
    accessLog: opts.accessLog ?? false,
    configPath: opts.configPath,
  });
}

/** Poll until fn returns truthy or the deadline passes. */
export async function waitFor<T>(fn: () => T | Promise<T>, timeoutMs = 10_000, stepMs = 25): Promise<T> {
  const end = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > end) throw new Error(`waitFor timed out${last ? `: ${(last as Error).message}` : ''}`);
    await new Promise((r) => setTimeout(r, stepMs));
  }
}
