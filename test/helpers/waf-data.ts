// Where the WAF's data lives in the repository: the CRS copy meshgate ships
// (vendor/crs: OWASP CRS v4.28.0, Apache-2.0) and the test corpora
// (test/fixtures/crs: CRS's go-ftw regression tests; test/fixtures/waf-corpus:
// libinjection's attack and false-positive lists, BSD-3).
import { fileURLToPath } from 'node:url';

const root = (p: string): string => fileURLToPath(new URL(`../../${p}`, import.meta.url));

export const CRS_RULES_DIR = root('vendor/crs/rules');
/** The folder holding `tests/regression/tests/<file>/<ruleid>.yaml`. */
export const CRS_TESTS_ROOT = root('test/fixtures/crs');
export const LIBINJECTION_DIR = root('test/fixtures/waf-corpus/libinjection');

/** A libinjection corpus line decoded as libinjection's own test reader does: '+' is a space, %XX a byte (a byte string). */
export function decodeCorpusLine(s: string): string {
  let out = '';
  for (let i = 0; i < s.length; i++) {
    const c = s[i]!;
    if (c === '+') out += ' ';
    else if (c === '%' && /^[0-9a-fA-F]{2}$/.test(s.slice(i + 1, i + 3))) {
      out += String.fromCharCode(parseInt(s.slice(i + 1, i + 3), 16));
      i += 2;
    } else out += c;
  }
  return out;
}
