// The config file watch sees every way a config file is replaced in practice:
// the kubelet's ConfigMap update (a `..data` symlink swap), an editor's
// write-and-rename, an atomic move, an in-place write; and it stays quiet for
// other files in the same directory.
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { watchConfigFile } from '../../../src/config/watch.js';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Counts callbacks; waitFor resolves once `n` have come, or fails after `ms`. */
function counter(): { calls: number; waitFor(n: number, ms: number): Promise<void> } {
  const c = {
    calls: 0,
    async waitFor(n: number, ms: number): Promise<void> {
      const until = Date.now() + ms;
      while (c.calls < n) {
        if (Date.now() > until) assert.fail(`expected ${n} change(s) within ${ms} ms, saw ${c.calls}`);
        await sleep(10);
      }
    },
  };
  return c;
}

/** A directory laid out as the kubelet mounts a ConfigMap: name -> ..data/name, ..data -> ..<timestamp>. */
function configMapDir(content: string): { dir: string; file: string; update(next: string): void } {
  const dir = mkdtempSync(join(tmpdir(), 'meshgate-cm-'));
  let n = 0;
  const version = (text: string): string => {
    const ts = `..2026_12_05_00_00_0${n++}.000000001`;
    mkdirSync(join(dir, ts));
    writeFileSync(join(dir, ts, 'meshgate.yaml'), text);
    return ts;
  };
  symlinkSync(version(content), join(dir, '..data'));
  symlinkSync('..data/meshgate.yaml', join(dir, 'meshgate.yaml'));
  return {
    dir,
    file: join(dir, 'meshgate.yaml'),
    update(next: string) {
      // What the kubelet's AtomicWriter does: a new timestamped directory, ..data_tmp pointing at it, one rename over ..data.
      const ts = version(next);
      symlinkSync(ts, join(dir, '..data_tmp'));
      renameSync(join(dir, '..data_tmp'), join(dir, '..data'));
    },
  };
}

test('a ConfigMap update (the kubelet swapping ..data) is seen within a second, once', async () => {
  const cm = configMapDir('routes: []\n');
  const c = counter();
  const w = watchConfigFile(cm.file, () => c.calls++, 50);
  try {
    await sleep(50);
    cm.update('routes: [{ name: a }]\n');
    await c.waitFor(1, 1000);
    await sleep(300);
    assert.equal(c.calls, 1, 'one update, one reload');
    cm.update('routes: [{ name: b }]\n');
    await c.waitFor(2, 1000);
  } finally {
    w.close();
    rmSync(cm.dir, { recursive: true, force: true });
  }
});

test('an editor that writes a temporary file and renames it over the config, an atomic move, and an in-place write are each seen', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'meshgate-watch-'));
  const file = join(dir, 'meshgate.yaml');
  writeFileSync(file, 'routes: []\n');
  const c = counter();
  const w = watchConfigFile(file, () => c.calls++, 50);
  try {
    await sleep(50);
    writeFileSync(join(dir, '.meshgate.yaml.swp'), 'routes: [{ name: a }]\n');
    renameSync(join(dir, '.meshgate.yaml.swp'), file);
    await c.waitFor(1, 1000);
    const elsewhere = mkdtempSync(join(tmpdir(), 'meshgate-watch-src-'));
    writeFileSync(join(elsewhere, 'next.yaml'), 'routes: [{ name: b }]\n');
    renameSync(join(elsewhere, 'next.yaml'), file);
    rmSync(elsewhere, { recursive: true, force: true });
    await c.waitFor(2, 1000);
    writeFileSync(file, 'routes: [{ name: c }, { name: d }]\n');
    await c.waitFor(3, 1000);
  } finally {
    w.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('other files in the directory changing do not reload the config', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'meshgate-watch-'));
  const file = join(dir, 'meshgate.yaml');
  writeFileSync(file, 'routes: []\n');
  const c = counter();
  const w = watchConfigFile(file, () => c.calls++, 50);
  try {
    await sleep(50);
    writeFileSync(join(dir, 'other.yaml'), 'x: 1\n');
    writeFileSync(join(dir, 'notes.txt'), 'hello\n');
    await sleep(400);
    assert.equal(c.calls, 0);
  } finally {
    w.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
