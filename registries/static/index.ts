// Static registry: a fixed list of endpoints, as service `<name>.static`.
// Each entry is "host:port" followed by optional "weight=N" and "key=value" words.
import type { RegistryFactory } from '../../src/discovery/types.js';
import { parseStaticEndpoint } from './endpoint.js';
import type { StaticConfig } from './schema.js';

export { parseStaticEndpoint } from './endpoint.js';

const createStatic: RegistryFactory<StaticConfig> = (config, sink) => ({
  start() {
    const endpoints = config.endpoints.map((s) => {
      const e = parseStaticEndpoint(s);
      if (config.protocol && !e.metadata.protocol) e.metadata.protocol = config.protocol;
      return e;
    });
    sink.replaceAll(new Map([[`${config.name}.static`, endpoints]]));
    sink.status(true);
    sink.synced();
  },
  stop() {},
});

export default createStatic;
