// Instance selection for a backend: subset (instance metadata), subset
// fallback, grey tag lanes, then the service's load balancer.
//
// Candidates come in groups tried in order. A group with an instance left to
// pick answers; a group whose instances are all excluded (already tried by this
// request) but still available answers "none" rather than spilling into the
// next group, so a retry stays in its subset or lane (forward.ts then retries
// the same group again). Only a group with no available instance at all falls
// through.
import type { Cluster, View } from '../balancing/cluster.js';
import { matchesSubset, selectorKey } from '../balancing/cluster.js';
import type { Instance } from '../balancing/instance.js';
import type { Exchange } from '../exchange/exchange.js';
import { routeToCanary, type BackendSet, type CompiledBackend, type CompiledCanary } from './canary.js';
import { applyGrey, greyOf, instanceTag, type CompiledGrey } from './grey.js';

const NONE = Symbol('none');
type Result = Instance | undefined | typeof NONE;

function hasAvailable(view: View): boolean {
  const now = Date.now();
  for (const i of view.instances) if (i.available(now)) return true;
  return false;
}

/** Pick from a view: an instance, NONE (group exhausted by exclusion: stop), or undefined (group empty: fall through). */
function tryView(view: View, ex: Exchange, exclude: ReadonlySet<Instance>): Result {
  const inst = view.lb.pick(ex, exclude);
  if (inst !== undefined) return inst;
  return exclude.size > 0 && hasAvailable(view) ? NONE : undefined;
}

export function pickInstance(backend: CompiledBackend, ex: Exchange, exclude: ReadonlySet<Instance>): Instance | undefined {
  const grey = greyOf(ex);
  if (grey !== undefined) return pickGrey(backend, ex, exclude, grey);
  const cluster = backend.cluster;
  if (backend.subset) {
    const r = tryView(cluster.view({ subset: backend.subset }), ex, exclude);
    if (r === NONE) return undefined;
    if (r !== undefined || backend.subsetFallback === 'none') return r;
  }
  return cluster.pick(ex, undefined, exclude);
}

/** Tags present in a cluster per grey config, recomputed when its instances change. */
const tagCache = new WeakMap<Cluster, { generation: number; byGrey: Map<string, ReadonlySet<string>> }>();

export function clusterTags(cluster: Cluster, grey: CompiledGrey): ReadonlySet<string> {
  let c = tagCache.get(cluster);
  if (c === undefined || c.generation !== cluster.generation) {
    c = { generation: cluster.generation, byGrey: new Map() };
    tagCache.set(cluster, c);
  }
  let tags = c.byGrey.get(grey.id);
  if (tags === undefined) {
    const s = new Set<string>();
    for (const i of cluster.instances) {
      const t = instanceTag(i, grey.keys);
      if (t !== undefined) s.add(t);
    }
    tags = s;
    c.byGrey.set(grey.id, tags);
  }
  return tags;
}

/**
 * Grey lanes within the backend's subset: instances of the request's tag,
 * then untagged instances, then (rather than no answer) any instance of the
 * subset. An untagged request starts at the untagged instances.
 */
function pickGrey(backend: CompiledBackend, ex: Exchange, exclude: ReadonlySet<Instance>, grey: CompiledGrey): Instance | undefined {
  const cluster = backend.cluster;
  let subset = backend.subset;
  if (subset !== undefined) {
    const sv = cluster.view({ subset });
    if (!hasAvailable(sv)) {
      if (backend.subsetFallback === 'none') return undefined;
      subset = undefined;
    }
  }
  const sk = subset !== undefined ? selectorKey(subset) : '';
  const keys = grey.keys;
  const tag = ex.tag;
  if (tag !== undefined && clusterTags(cluster, grey).has(tag)) {
    const lane = cluster.filtered(`${grey.id}\u0000${sk}\u0000=${tag}`, (i) => (subset === undefined || matchesSubset(i, subset)) && instanceTag(i, keys) === tag);
    const r = tryView(lane, ex, exclude);
    if (r === NONE) return undefined;
    if (r !== undefined) return r;
  }
  const base = cluster.filtered(`${grey.id}\u0000${sk}\u0000-`, (i) => (subset === undefined || matchesSubset(i, subset)) && instanceTag(i, keys) === undefined);
  const r = tryView(base, ex, exclude);
  if (r === NONE) return undefined;
  if (r !== undefined) return r;
  return subset !== undefined ? cluster.pick(ex, { subset }, exclude) : cluster.pick(ex, undefined, exclude);
}

/**
 * The backend a request goes to (every route kind and upgrades alike): its
 * grey tag first (full-link grey), then the canary set when the request
 * matches the canary rules, else the main set; then a weighted pick.
 */
export function chooseBackend(ex: Exchange, main: BackendSet, canary: CompiledCanary | undefined, grey: CompiledGrey | undefined): CompiledBackend | undefined {
  if (grey !== undefined) applyGrey(grey, ex);
  const set = canary && routeToCanary(canary, ex) ? canary.backends : main;
  if (set !== main) ex.vars.canary = true;
  return set.pick();
}
