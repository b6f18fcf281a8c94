// Writes src/filters/waf/libinjection/sqli-data.ts: libinjection's SQL keyword
// and fingerprint table, read out of the same libmodsecurity3 build the oracle
// runs (so the port and the oracle share one table). Every entry read is then
// checked against the library's own lookup, and the library's version is
// recorded in the header.
//
// Run: node --import tsx test/oracle/gen-sqli-data.ts
// Needs libmodsecurity3 (x86_64 or aarch64) and gcc.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const LIBS = ['/usr/lib/x86_64-linux-gnu/libmodsecurity.so.3', '/usr/lib/aarch64-linux-gnu/libmodsecurity.so.3', '/usr/lib/libmodsecurity.so.3'];
const lib = LIBS.find((p) => existsSync(p));
if (!lib) throw new Error('libmodsecurity3 is not installed (apt-get install -y libmodsecurity3)');

interface Section {
  name: string;
  type: number;
  addr: number;
  offset: number;
  size: number;
}

const elf = readFileSync(lib);
if (elf.readUInt32BE(0) !== 0x7f454c46 || elf[4] !== 2 || elf[5] !== 1) throw new Error(`${lib}: not a little-endian 64-bit ELF`);
const machine = elf.readUInt16LE(0x12);
// Position-independent pointers in a shared object live in RELATIVE relocations.
const RELATIVE = machine === 62 ? 8 : machine === 183 ? 1027 : -1;
if (RELATIVE < 0) throw new Error(`unsupported ELF machine ${machine}`);

const shoff = Number(elf.readBigUInt64LE(0x28));
const shentsize = elf.readUInt16LE(0x3a);
const shnum = elf.readUInt16LE(0x3c);
const shstrndx = elf.readUInt16LE(0x3e);
const headers: (Section & { nameOff: number })[] = [];
for (let i = 0; i < shnum; i++) {
  const o = shoff + i * shentsize;
  headers.push({
    name: '',
    nameOff: elf.readUInt32LE(o),
    type: elf.readUInt32LE(o + 4),
    addr: Number(elf.readBigUInt64LE(o + 0x10)),
    offset: Number(elf.readBigUInt64LE(o + 0x18)),
    size: Number(elf.readBigUInt64LE(o + 0x20)),
  });
}
const names = headers[shstrndx]!;
const sections: Section[] = headers.map((s) => {
  const at = names.offset + s.nameOff;
  return { ...s, name: elf.toString('latin1', at, elf.indexOf(0, at)) };
});

/** File offset of a virtual address (NOBITS sections have no bytes). */
function fileOffset(addr: number): number | undefined {
  for (const s of sections) if (s.addr !== 0 && s.type !== 8 && addr >= s.addr && addr < s.addr + s.size) return addr - s.addr + s.offset;
  return undefined;
}

function cString(addr: number): string | undefined {
  const o = fileOffset(addr);
  if (o === undefined) return undefined;
  return elf.toString('latin1', o, elf.indexOf(0, o));
}

const relocs = new Map<number, number>();
for (const s of sections) {
  if (s.type !== 4) continue; // SHT_RELA
  for (let o = s.offset; o < s.offset + s.size; o += 24) {
    const info = elf.readBigUInt64LE(o + 8);
    if (Number(info & 0xffffffffn) === RELATIVE) relocs.set(Number(elf.readBigUInt64LE(o)), Number(elf.readBigInt64LE(o + 16)));
  }
}

// The table is an array of { const char *word; char type; } (16 bytes each),
// sorted, starting with { "!!", 'o' } then { "!<", 'o' }.
let start = -1;
for (const [at, target] of relocs) {
  if (cString(target) !== '!!') continue;
  const o = fileOffset(at);
  const next = relocs.get(at + 16);
  if (o !== undefined && elf[o + 8] === 0x6f && next !== undefined && cString(next) === '!<') {
    start = at;
    break;
  }
}
if (start < 0) throw new Error('keyword table not found');

const table: [string, string][] = [];
for (let at = start; relocs.has(at); at += 16) {
  const word = cString(relocs.get(at)!);
  const o = fileOffset(at);
  if (word === undefined || o === undefined) break;
  const type = elf[o + 8]!;
  if (type < 0x21 || type > 0x7e) break;
  table.push([word, String.fromCharCode(type)]);
}
for (let i = 1; i < table.length; i++) {
  if (!(Buffer.from(table[i - 1]![0], 'latin1').compare(Buffer.from(table[i]![0], 'latin1')) < 0)) throw new Error(`table not sorted at ${table[i]![0]}`);
}

// Cross-check every entry with the library's own lookup (LOOKUP_WORD = 1 only
// reads the table) and ask it for its version.
const check = `
#include <stdio.h>
#include <string.h>
const char *libinjection_version(void);
char libinjection_sqli_lookup_word(void *sf, int lookup_type, const char *s, size_t len);
int main(void) {
  char line[256];
  printf("%s\\n", libinjection_version());
  while (fgets(line, sizeof line, stdin)) {
    size_t n = strcspn(line, "\\n");
    char t = libinjection_sqli_lookup_word(NULL, 1, line, n);
    printf("%c\\n", t ? t : '-');
  }
  return 0;
}
`;
const dir = mkdtempSync(join(tmpdir(), 'meshgate-sqli-data-'));
writeFileSync(join(dir, 'check.c'), check);
execFileSync('gcc', ['-O1', '-o', join(dir, 'check'), join(dir, 'check.c'), `-l:libmodsecurity.so.3`], { stdio: 'pipe' });
const answer = execFileSync(join(dir, 'check'), [], { input: table.map(([w]) => w).join('\n') + '\n' })
  .toString('latin1')
  .split('\n');
const version = answer[0]!;
table.forEach(([w, t], i) => {
  if (answer[i + 1] !== t) throw new Error(`library says ${w} is ${answer[i + 1]}, table says ${t}`);
});

let pkg = 'libmodsecurity3';
try {
  pkg += ' ' + execFileSync('dpkg-query', ['-W', '-f=${Version}', 'libmodsecurity3']).toString().trim();
} catch {
  // not a Debian system: the library path says enough
}

const words = table.filter(([, t]) => t !== 'F');
const fingerprints = table.filter(([, t]) => t === 'F').map(([w]) => w);

/** A single-quoted TS string literal (the table is printable ASCII). */
const q = (v: string): string => `'${v.replace(/[\\']/g, (c) => '\\' + c)}'`;

const lines: string[] = [];
lines.push('// GENERATED by test/oracle/gen-sqli-data.ts: do not edit by hand.');
lines.push('//');
lines.push(`// libinjection ${version} (libinjection/libinjection, Copyright (c) 2012-2016`);
lines.push('// Nick Galbreath), BSD-3-Clause: see ./COPYING. Its sql_keywords table as');
lines.push(`// built into ${pkg}, the library the test oracle runs;`);
lines.push('// each entry was confirmed through that library\'s own keyword lookup.');
lines.push('');
lines.push(`export const LIBINJECTION_VERSION = ${q(version)};`);
lines.push('');
lines.push('/**');
lines.push(' * SQL words, multi-word phrases ("UNION ALL") and two-char operators, upper');
lines.push(' * case, with their token type: one char as it appears in a fingerprint.');
lines.push(' */');
lines.push('export const SQL_WORDS: ReadonlyArray<readonly [string, string]> = [');
for (const [w, t] of words) lines.push(`  [${q(w)}, ${q(t)}],`);
lines.push('];');
lines.push('');
lines.push('/**');
lines.push(' * Fingerprints that mean SQL injection: "0" followed by the token types,');
lines.push(' * letters upper-cased (a fingerprint "s&sos" is looked up as "0S&SOS").');
lines.push(' */');
lines.push('export const SQLI_FINGERPRINTS: readonly string[] = [');
for (let i = 0; i < fingerprints.length; i += 8) lines.push('  ' + fingerprints.slice(i, i + 8).map(q).join(', ') + ',');
lines.push('];');
lines.push('');

const out = fileURLToPath(new URL('../../src/filters/waf/libinjection/sqli-data.ts', import.meta.url));
writeFileSync(out, lines.join('\n'));
console.log(`${out}: libinjection ${version}, ${words.length} words, ${fingerprints.length} fingerprints`);
