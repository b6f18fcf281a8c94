/*
 * Oracle for meshgate's libinjection port: the real libinjection, as exported
 * by Debian's libmodsecurity3 (which builds it in). Reads records from stdin:
 * a 4-byte little-endian length, then that many bytes; writes one line per
 * record: "<is_sqli> <fingerprint> <is_xss>".
 * Build: gcc -O2 -o libinjection-oracle libinjection.c -l:libmodsecurity.so.3
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdint.h>

int libinjection_sqli(const char *s, size_t slen, char fingerprint[]);
int libinjection_xss(const char *s, size_t slen);

int main(void) {
  uint8_t hdr[4];
  size_t cap = 1 << 16;
  char *buf = malloc(cap);
  while (fread(hdr, 1, 4, stdin) == 4) {
    size_t n = (size_t)hdr[0] | ((size_t)hdr[1] << 8) | ((size_t)hdr[2] << 16) | ((size_t)hdr[3] << 24);
    if (n + 1 > cap) { cap = n + 1; buf = realloc(buf, cap); }
    if (n > 0 && fread(buf, 1, n, stdin) != n) return 2;
    buf[n] = 0;
    char fp[8];
    memset(fp, 0, sizeof fp);
    int sqli = libinjection_sqli(buf, n, fp);
    int xss = libinjection_xss(buf, n);
    printf("%d %s %d\n", sqli, fp[0] ? fp : "-", xss);
  }
  fflush(stdout);
  return 0;
}
