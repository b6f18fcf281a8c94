// The `nacos` npm client (NacosNamingClient) as the gateway uses it: subscribe
// to a service, which registers our UDP port with the server (push) and polls
// every cacheMillis; the client answers pushes with push-acks.
//
// Two gaps of the client are closed here, by looking at what it receives rather
// than at what it tells its listeners:
// - it drops a ServiceInfo whose host list is empty, so "all instances gone"
//   never reaches a listener, and when the same instances come back its cache
//   still holds them, so that change is not reported either;
// - its listeners get hosts without lastRefTime, so an old poll answer could not
//   be told from a newer push.
// Every ServiceInfo the client gets, by push or by poll, goes through its host
// reactor's processServiceJSON; we observe that call (the client keeps doing
// what it did). If a future client version lacks that method, the watcher's
// own polling still delivers empty lists, only later.
import { NacosNamingClient } from 'nacos';

export type ServiceInfoObserver = (json: string) => void;

interface HostReactorLike {
  processServiceJSON?: (json: string) => unknown;
  on?: (event: 'error', fn: (err: Error) => void) => void;
  _pushReceiver?: { on?: (event: 'error', fn: (err: Error) => void) => void; udpPort?: number };
  _futureMap?: Map<string, { timer?: NodeJS.Timeout }>;
}

export interface ClientLogger {
  debug(msg: string, ...args: unknown[]): void;
  warn(msg: string, ...args: unknown[]): void;
}

export interface NamingClientOptions {
  servers: string[];
  namespace: string;
  httpclient: unknown;
  logger: ClientLogger;
  onServiceInfo: ServiceInfoObserver;
  onError: (err: Error) => void;
}

export type HostsListener = (hosts: unknown[]) => void;

export class NamingClient {
  private readonly client: InstanceType<typeof NacosNamingClient>;
  /** True when every ServiceInfo is observed (empty lists included). */
  readonly observing: boolean;

  constructor(opts: NamingClientOptions) {
    const quiet = (...args: unknown[]) => opts.logger.debug(String(args[0]), ...args.slice(1));
    const logger = { info: quiet, debug: quiet, log: quiet, warn: quiet, error: (...args: unknown[]) => opts.logger.warn(String(args[0]), ...args.slice(1)) };
    this.client = new NacosNamingClient({
      logger: logger as unknown as typeof console,
      serverList: opts.servers,
      namespace: opts.namespace,
      // The client's transport defaults to urllib; ours adds the access token.
      httpclient: opts.httpclient,
    } as ConstructorParameters<typeof NacosNamingClient>[0]);
    const reactor = this.reactor();
    reactor?.on?.('error', opts.onError);
    reactor?._pushReceiver?.on?.('error', opts.onError);
    (this.client as unknown as { on?: (e: string, fn: (err: Error) => void) => void }).on?.('error', opts.onError);
    const original = reactor?.processServiceJSON;
    if (reactor && typeof original === 'function') {
      reactor.processServiceJSON = function (this: unknown, json: string) {
        try {
          opts.onServiceInfo(json);
        } catch {
          // an observer failure must never break the client
        }
        return original.call(reactor, json);
      };
      this.observing = true;
    } else {
      this.observing = false;
    }
  }

  private reactor(): HostReactorLike | undefined {
    return (this.client as unknown as { _hostReactor?: HostReactorLike })._hostReactor;
  }

  ready(): Promise<void> {
    return this.client.ready() as Promise<void>;
  }

  subscribe(serviceName: string, groupName: string, clusters: string, listener: HostsListener): void {
    this.client.subscribe({ serviceName, groupName, clusters }, listener as never);
  }

  unsubscribe(serviceName: string, groupName: string, clusters: string, listener: HostsListener): void {
    this.client.unSubscribe({ serviceName, groupName, clusters }, listener as never);
    // The client keeps polling a service after unSubscribe; stop that too.
    const futures = this.reactor()?._futureMap;
    const key = `${groupName}@@${serviceName}@@${clusters || 'DEFAULT'}`;
    const task = futures?.get(key);
    if (task) {
      if (task.timer) clearTimeout(task.timer);
      futures!.delete(key);
    }
  }

  async close(): Promise<void> {
    await (this.client as unknown as { close(): Promise<void> }).close();
  }
}
