// Watch a config file and call back after it changed and settled.
//
// The directory is watched, not the file: editors replace files (write a
// temporary file, rename it over the old one) as often as they write them,
// and a Kubernetes ConfigMap mounted as a directory is updated by the kubelet
// without touching the file's own name at all: the file is a symlink to
// `..data/<name>`, and an update writes a new timestamped directory, points
// `..data_tmp` at it and renames `..data_tmp` over `..data` (the events name
// `..data_tmp` and `..data`). So any event in the directory triggers a look at
// what the path now resolves to (its real path, inode, size and mtime); only
// a change there calls back. Several events of one save collapse into one
// call after `debounceMs`.
import { statSync, watch, type FSWatcher } from 'node:fs';
import { dirname, resolve } from 'node:path';

/** What identifies the content a path resolves to, or '' when it does not resolve. */
function identity(file: string): string {
  try {
    // statSync follows symlinks (the kubelet's two levels included).
    const s = statSync(file);
    return `${s.dev}:${s.ino}:${s.size}:${s.mtimeMs}`;
  } catch {
    return '';
  }
}

export function watchConfigFile(file: string, onChange: () => void, debounceMs = 200): { close(): void } {
  const abs = resolve(file);
  let seen = identity(abs);
  let timer: NodeJS.Timeout | undefined;
  let w: FSWatcher | undefined;
  const settle = (): void => {
    timer = undefined;
    const now = identity(abs);
    // A path that does not resolve mid-swap is not a change: the next event brings the new file.
    if (now === '' || now === seen) return;
    seen = now;
    onChange();
  };
  try {
    w = watch(dirname(abs), { persistent: false }, () => {
      if (timer) clearTimeout(timer);
      timer = setTimeout(settle, debounceMs);
    });
  } catch {
    w = undefined;
  }
  return {
    close() {
      if (timer) clearTimeout(timer);
      w?.close();
    },
  };
}
