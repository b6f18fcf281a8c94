// Watch a config file and call back after it changed and settled. Editors
// replace files (rename) as often as they write them, so the directory is watched.
import { watch, type FSWatcher } from 'node:fs';
import { basename, dirname, resolve } from 'node:path';

export function watchConfigFile(file: string, onChange: () => void, debounceMs = 200): { close(): void } {
  const abs = resolve(file);
  const name = basename(abs);
  let timer: NodeJS.Timeout | undefined;
  let w: FSWatcher | undefined;
  try {
    w = watch(dirname(abs), { persistent: false }, (_event, f) => {
      if (f !== null && f !== name) return;
      if (timer) clearTimeout(timer);
      timer = setTimeout(onChange, debounceMs);
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
