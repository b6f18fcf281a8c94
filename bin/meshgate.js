#!/usr/bin/env node
// The `meshgate` command: runs the compiled CLI (npm run build creates dist/).
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const compiled = join(root, 'dist/src/cli.js');
if (!existsSync(compiled)) {
  process.stderr.write('meshgate: dist/ is missing; run `npm run build` (npm install does it) first\n');
  process.exit(1);
}
await import(compiled);
