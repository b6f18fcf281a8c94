#!/usr/bin/env node
// npm's `prepare` hook in a git clone: builds dist/ when the dev dependencies
// (TypeScript) are installed, as `npm ci` installs them. `npm ci --omit=dev`
// has no compiler: say what to do instead of failing the install. The web
// console (dist/console) is built too when esbuild is installed.
import { existsSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc');
if (!existsSync(tsc)) {
  process.stderr.write('meshgate: not building dist/: TypeScript is a dev dependency. Run `npm ci` (with dev dependencies) to build, or install a packed tarball (`npm pack`), which ships dist/.\n');
  process.exit(0);
}
const r = spawnSync(process.execPath, [tsc, '-p', join(root, 'tsconfig.build.json')], { stdio: 'inherit' });
if (r.status !== 0) process.exit(r.status ?? 1);
if (existsSync(join(root, 'node_modules', 'esbuild', 'package.json'))) {
  const c = spawnSync(process.execPath, [join(root, 'bin', 'build-console.mjs')], { stdio: 'inherit' });
  process.exit(c.status ?? 1);
}
