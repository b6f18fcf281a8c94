// The reference libinjection (Debian's libmodsecurity3 exports it) driven from
// tests: compiles test/oracle/libinjection.c once per process into a temp
// folder and answers batches of byte strings (one JS char per byte).
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, renameSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export interface OracleResult {
  isSqli: boolean;
  /** The SQLi fingerprint libinjection computed ('' when none). */
  fingerprint: string;
  isXss: boolean;
}

let binary: string | undefined;

/** Why the oracle cannot run here, or undefined when it can. */
export function oracleUnavailable(): string | undefined {
  const candidates = ['/usr/lib/x86_64-linux-gnu/libmodsecurity.so.3', '/usr/lib/aarch64-linux-gnu/libmodsecurity.so.3', '/usr/lib/libmodsecurity.so.3'];
  if (!candidates.some((p) => existsSync(p))) return 'libmodsecurity3 is not installed (apt-get install -y libmodsecurity3)';
  return undefined;
}

/** Builds the harness once per source version (a shared binary in the temp folder, written atomically). */
function build(): string {
  if (binary) return binary;
  const src = fileURLToPath(new URL('./libinjection.c', import.meta.url));
  const hash = createHash('sha256').update(readFileSync(src)).digest('hex').slice(0, 12);
  const out = join(tmpdir(), `meshgate-libinjection-oracle-${hash}`);
  if (!existsSync(out)) {
    const partial = `${out}.${process.pid}`;
    execFileSync('gcc', ['-O2', '-o', partial, src, '-l:libmodsecurity.so.3'], { stdio: 'pipe' });
    renameSync(partial, out);
  }
  binary = out;
  return out;
}

/** Runs the reference libinjection over each input. */
export function libinjectionOracle(inputs: readonly string[]): OracleResult[] {
  const bin = build();
  const parts: Buffer[] = [];
  for (const s of inputs) {
    const b = Buffer.from(s, 'latin1');
    const h = Buffer.alloc(4);
    h.writeUInt32LE(b.length);
    parts.push(h, b);
  }
  const out = execFileSync(bin, [], { input: Buffer.concat(parts), maxBuffer: 1 << 30 }).toString('latin1');
  const lines = out.split('\n');
  const res: OracleResult[] = [];
  for (let i = 0; i < inputs.length; i++) {
    const [s, fp, x] = (lines[i] ?? '').split(' ');
    if (s === undefined || fp === undefined || x === undefined) throw new Error(`oracle gave no answer for input ${i}`);
    res.push({ isSqli: s === '1', fingerprint: fp === '-' ? '' : fp, isXss: x === '1' });
  }
  return res;
}
