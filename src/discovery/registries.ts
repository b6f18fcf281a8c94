// The registry kinds, looked up by `type`: a view of the one list of plug-ins
// in registries/index.ts (each kind's schema, service suffix, checks and
// adapter live in its own folder).
import { REGISTRY_PLUGINS, type AnyRegistryConfig } from '../../registries/index.js';
import type { RegistryConfigProblem, RegistryFactory, RegistryPlugin, ServiceNames } from './types.js';

const byType = new Map<string, RegistryPlugin>(REGISTRY_PLUGINS.map((p) => [p.type, p as unknown as RegistryPlugin]));

/** The plug-in of a registry type; throws for a type no plug-in has. */
export function registryPlugin(type: string): RegistryPlugin {
  const p = byType.get(type);
  if (!p) throw new Error(`unknown registry type "${type}" (known: ${[...byType.keys()].join(', ')})`);
  return p;
}

/** Import the adapter of a registry type (a kind's client library loads only when a registry of that kind is used). */
export async function loadRegistryFactory(type: AnyRegistryConfig['type']): Promise<RegistryFactory<AnyRegistryConfig>> {
  return (await registryPlugin(type).load()) as unknown as RegistryFactory<AnyRegistryConfig>;
}

/** Checks of one registry's config beyond its schema; paths are relative to the registry. */
export function registryConfigProblems(config: AnyRegistryConfig): RegistryConfigProblem[] {
  return registryPlugin(config.type).check?.(config) ?? [];
}

/** The names a configured registry gives its services (for config validation). */
export function registryNames(config: AnyRegistryConfig): ServiceNames {
  return registryPlugin(config.type).names(config);
}
