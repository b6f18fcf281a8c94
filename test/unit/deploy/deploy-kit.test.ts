// The deploy kit, checked as far as this machine allows (no Docker daemon,
// no cluster): the Kustomize base rendered by `kubectl kustomize` and its
// objects checked against each other and against the config they mount; the
// Dockerfile's text against the config it ships; the systemd unit through
// `systemd-analyze verify`.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { parseAllDocuments } from 'yaml';
import { loadConfigFile, parseConfigText } from '../../../src/config/load.js';
import { dryCompile } from '../../../src/server/dry-compile.js';

type Obj = { kind: string; apiVersion: string; metadata: { name: string; labels?: Record<string, string> }; spec?: any; data?: Record<string, string> };

function have(cmd: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;
}

function portOf(address: string): number {
  return Number(address.slice(address.lastIndexOf(':') + 1));
}

describe('Kubernetes (Kustomize base in deploy/kubernetes)', { skip: have('kubectl') ? false : 'kubectl is not installed' }, () => {
  const out = spawnSync('kubectl', ['kustomize', 'deploy/kubernetes'], { encoding: 'utf8' });
  const objs = out.status === 0 ? (parseAllDocuments(out.stdout).map((d) => d.toJS()) as Obj[]) : [];
  const one = (kind: string): Obj => {
    const o = objs.find((x) => x.kind === kind);
    assert.ok(o, `${kind} rendered (kubectl kustomize: ${out.stderr})`);
    return o;
  };

  it('renders a Deployment, Service, ConfigMap, PodDisruptionBudget and HorizontalPodAutoscaler', () => {
    assert.equal(out.status, 0, out.stderr);
    assert.deepEqual(objs.map((o) => o.kind).sort(), ['ConfigMap', 'Deployment', 'HorizontalPodAutoscaler', 'PodDisruptionBudget', 'Service']);
  });

  it('the mounted config validates, and the probes, ports and Service line up with what it binds', async () => {
    const dep = one('Deployment');
    const cm = one('ConfigMap');
    const pod = dep.spec.template.spec;
    const c = pod.containers[0];
    const args: string[] = c.args;
    const configPath = args[args.indexOf('--config') + 1]!;
    // The config is the ConfigMap's key, mounted as a whole directory (a subPath mount never updates: no reload).
    const mount = c.volumeMounts.find((m: { mountPath: string }) => configPath.startsWith(m.mountPath + '/'));
    assert.ok(mount, `a volume mounted above ${configPath}`);
    assert.equal(mount.subPath, undefined, 'the ConfigMap is mounted as a directory');
    const vol = pod.volumes.find((v: { name: string }) => v.name === mount.name);
    assert.equal(vol.configMap.name, cm.metadata.name);
    const key = configPath.slice(mount.mountPath.length + 1);
    const text = cm.data![key];
    assert.ok(text, `ConfigMap has ${key}`);
    const cfg = parseConfigText(text, 'ConfigMap meshgate.yaml', {});
    await dryCompile(cfg);

    const ports = new Map<string, number>(c.ports.map((p: { name: string; containerPort: number }) => [p.name, p.containerPort]));
    // Probes hit the admin listener on an address the kubelet can reach (the pod IP, so not 127.0.0.1).
    assert.ok(cfg.admin.address.startsWith('0.0.0.0:') || cfg.admin.address.startsWith('[::]:'), `admin binds ${cfg.admin.address}`);
    for (const probe of [c.readinessProbe, c.livenessProbe]) {
      const port = typeof probe.httpGet.port === 'string' ? ports.get(probe.httpGet.port) : probe.httpGet.port;
      assert.equal(port, portOf(cfg.admin.address), 'probe port is the admin port');
      assert.ok(['/readyz', '/healthz'].includes(probe.httpGet.path));
    }
    const pub = cfg.listeners[0]!;
    assert.ok(pub.address.startsWith('0.0.0.0:'), `listener binds ${pub.address}`);
    assert.equal(ports.get('http'), portOf(pub.address));
    // The Service sends traffic to the public listener only; the admin API stays off it.
    const svc = one('Service');
    assert.deepEqual(svc.spec.ports.map((p: { targetPort: string }) => ports.get(p.targetPort)), [portOf(pub.address)]);
  });

  it('selectors match the pod, the image is pinned, and the container runs as non-root', () => {
    const dep = one('Deployment');
    const labels = dep.spec.template.metadata.labels;
    const matches = (sel: Record<string, string>): boolean => Object.keys(sel).length > 0 && Object.entries(sel).every(([k, v]) => labels[k] === v);
    assert.ok(matches(dep.spec.selector.matchLabels));
    assert.ok(matches(one('Service').spec.selector));
    assert.ok(matches(one('PodDisruptionBudget').spec.selector.matchLabels));
    assert.equal(one('HorizontalPodAutoscaler').spec.scaleTargetRef.name, dep.metadata.name);
    const c = dep.spec.template.spec.containers[0];
    assert.match(c.image, /:[\w.-]+$/);
    assert.doesNotMatch(c.image, /:latest$/);
    assert.equal(dep.spec.template.spec.securityContext.runAsNonRoot, true);
    assert.ok(c.resources.requests.cpu && c.resources.requests.memory);
  });

  it('the ConfigMap keeps its name across edits, so updates reach running pods (no hash suffix)', () => {
    assert.equal(one('ConfigMap').metadata.name, 'meshgate-config');
  });
});

describe('Dockerfile (deploy/Dockerfile; its text, since there is no Docker daemon here)', () => {
  const text = readFileSync('deploy/Dockerfile', 'utf8');
  const lines = text.split('\n').filter((l) => !l.startsWith('#'));

  it('pins its base image, runs as a non-root user and has a HEALTHCHECK on the admin port', () => {
    for (const l of lines.filter((x) => x.startsWith('FROM '))) assert.match(l, /^FROM node:\d+\.\d+\.\d+-/, l);
    const user = lines.filter((l) => l.startsWith('USER ')).pop();
    assert.ok(user && !/root|\b0\b/.test(user), `USER: ${user}`);
    const hc = lines.find((l) => l.startsWith('HEALTHCHECK'));
    assert.ok(hc);
    const cfg = loadConfigFile('deploy/docker.yaml');
    assert.match(text, new RegExp(`127\\.0\\.0\\.1:${portOf(cfg.admin.address)}/healthz`));
  });

  it('CMD reads the config the image ships, which listens on 0.0.0.0 on the ports it exposes', async () => {
    const cmd = lines.find((l) => l.startsWith('CMD '))!;
    const args = JSON.parse(cmd.slice(4)) as string[];
    const path = args[args.indexOf('--config') + 1]!;
    assert.ok(lines.some((l) => l === `COPY deploy/docker.yaml ${path}`), `the image ships ${path}`);
    assert.match(text, new RegExp(`default config is ${path.replace(/\./g, '\\.')}`), 'the comment names the same path');
    const cfg = loadConfigFile('deploy/docker.yaml');
    await dryCompile(cfg);
    const exposed = lines.find((l) => l.startsWith('EXPOSE '))!.slice(7).split(/\s+/).map(Number);
    for (const a of [cfg.listeners[0]!.address, cfg.admin.address]) {
      assert.ok(a.startsWith('0.0.0.0:'), a);
      assert.ok(exposed.includes(portOf(a)), `${a} exposed`);
    }
  });

  it('.dockerignore keeps dependencies, build output and history out of the build context', () => {
    const ignored = readFileSync('.dockerignore', 'utf8').split('\n').map((l) => l.trim());
    for (const p of ['node_modules', 'dist', '.git']) assert.ok(ignored.includes(p), p);
  });
});

describe('systemd unit (deploy/systemd/meshgate.service)', () => {
  it('passes systemd-analyze verify and needs no account created by hand', { skip: have('systemd-analyze') && existsSync('/usr/bin/node') ? false : 'systemd-analyze or /usr/bin/node missing' }, () => {
    const r = spawnSync('systemd-analyze', ['verify', 'deploy/systemd/meshgate.service'], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stderr.trim(), '');
    const unit = readFileSync('deploy/systemd/meshgate.service', 'utf8');
    assert.match(unit, /^DynamicUser=yes$/m);
    assert.doesNotMatch(unit, /^User=/m);
  });
});
