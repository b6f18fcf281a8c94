#!/usr/bin/env node
// Builds the web console (console/) into dist/console/: index.html and
// content-hashed assets, minified ES2020, nothing loaded from elsewhere at run
// time. The admin server serves these files. Output is deterministic for the
// same sources and esbuild version.
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const outDir = join(root, 'dist', 'console');
const assetsDir = join(outDir, 'assets');

export async function buildConsole({ quiet = false } = {}) {
  const esbuild = await import('esbuild');
  const result = await esbuild.build({
    absWorkingDir: root,
    entryPoints: [join(root, 'console', 'src', 'main.tsx')],
    bundle: true,
    minify: true,
    format: 'esm',
    target: ['es2020'],
    jsx: 'automatic',
    jsxImportSource: 'preact',
    outdir: assetsDir,
    entryNames: '[name]-[hash]',
    assetNames: '[name]-[hash]',
    legalComments: 'none',
    charset: 'utf8',
    sourcemap: false,
    metafile: true,
    write: false,
    logLevel: 'error',
    define: { 'process.env.NODE_ENV': '"production"' },
  });
  rmSync(outDir, { recursive: true, force: true });
  mkdirSync(assetsDir, { recursive: true });
  const files = [];
  for (const f of [...result.outputFiles].sort((a, b) => a.path.localeCompare(b.path))) {
    writeFileSync(f.path, f.contents);
    files.push({ name: basename(f.path), bytes: f.contents });
  }
  const js = files.find((f) => f.name.endsWith('.js'));
  const css = files.find((f) => f.name.endsWith('.css'));
  if (!js) throw new Error('console build: no JavaScript output');
  const template = readFileSync(join(root, 'console', 'index.html'), 'utf8');
  const html = template
    .replace('<!--CSS-->', css ? `<link rel="stylesheet" href="assets/${css.name}">` : '')
    .replace('<!--JS-->', `<script type="module" src="assets/${js.name}"></script>`);
  writeFileSync(join(outDir, 'index.html'), html);
  files.push({ name: 'index.html', bytes: Buffer.from(html) });
  let raw = 0;
  let gz = 0;
  for (const f of files) {
    raw += f.bytes.length;
    gz += gzipSync(f.bytes, { level: 9 }).length;
  }
  if (!quiet) {
    for (const f of files) process.stdout.write(`  ${f.name.padEnd(28)} ${String(f.bytes.length).padStart(8)} B  ${String(gzipSync(f.bytes, { level: 9 }).length).padStart(7)} B gzip\n`);
    process.stdout.write(`console: ${relative(root, outDir)}/ ${(raw / 1024).toFixed(1)} KiB, ${(gz / 1024).toFixed(1)} KiB gzipped\n`);
  }
  return { raw, gzip: gz, files: files.map((f) => f.name) };
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  buildConsole().catch((e) => {
    process.stderr.write(`console build failed: ${e.message}\n`);
    process.exit(1);
  });
}
