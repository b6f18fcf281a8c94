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
