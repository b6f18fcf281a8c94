// Nacos registry: every service of the configured namespace and groups, as
// `<service>.<group>.<namespace>.nacos` (group and namespace with '_' -> '-').
// protocol http: the v1 HTTP API, instances by UDP push with polling as the
// fallback. protocol grpc: Nacos' native gRPC protocol (2.x/3.x), instances by
// push on the connection's stream. protocol auto: gRPC if a server answers it
// at start, else HTTP.
import type { RegistryFactory, RegistrySink, RegistryWatcher } from '../../src/discovery/types.js';
import type { NacosConfig } from './schema.js';
import { NacosWatcher } from './watcher.js';
import { NacosGrpcWatcher, grpcAddress } from './grpc/watcher.js';
import { probeGrpc } from './grpc/connection.js';

export { NacosWatcher } from './watcher.js';
export { NacosGrpcWatcher } from './grpc/watcher.js';
export { nacosServiceName } from './parse.js';

/** protocol auto: probe the gRPC ports once at start, then run the matching watcher. */
class AutoNacosWatcher implements RegistryWatcher {
  private inner: RegistryWatcher | undefined;
  private stopped = false;

  constructor(
    private readonly config: NacosConfig,
    private readonly sink: RegistrySink,
  ) {}

  async start(): Promise<void> {
    this.stopped = false;
    const grpc = await probeGrpc(
      this.config.servers.map((s) => grpcAddress(s, this.config.grpcPortOffset)),
      2000,
    ).catch(() => false);
    if (this.stopped) return;
    this.sink.log.info({ registry: this.config.name, protocol: grpc ? 'grpc' : 'http' }, 'nacos protocol chosen');
    this.inner = grpc ? new NacosGrpcWatcher(this.config, this.sink) : new NacosWatcher(this.config, this.sink);
    await this.inner.start();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.inner?.stop();
  }

  describe(): Record<string, unknown> {
    return { protocol: 'auto', ...(this.inner?.describe?.() ?? {}) };
  }
}

const createNacos: RegistryFactory<NacosConfig> = (config, sink) => {
  if (config.protocol === 'grpc') return new NacosGrpcWatcher(config, sink);
  if (config.protocol === 'auto') return new AutoNacosWatcher(config, sink);
  return new NacosWatcher(config, sink);
};

export default createNacos;
