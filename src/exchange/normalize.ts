// Path and host normalisation: what routes match and upstreams receive.

/** "API.Example.com:8080" -> "api.example.com"; "[::1]:80" -> "[::1]" */
export function normalizeHost(raw: string | undefined): string {
  if (!raw) return '';
  let h = raw;
  if (h.charCodeAt(0) === 91 /* [ */) {
    const end = h.indexOf(']');
    h = end > 0 ? h.slice(0, end + 1) : h;
  } else {
    const c = h.indexOf(':');
    if (c >= 0) h = h.slice(0, c);
  }
  return h.toLowerCase();
}

/**
 * Remove dot segments and duplicate slashes (RFC 3986 5.2.4) so /a/../admin
 * cannot slip past a route. Returns the input when nothing needs changing.
 */
export function normalizePath(path: string): string {
  if (!path.includes('/.') && !path.includes('//') && !path.includes('%2e') && !path.includes('%2E')) return path;
  const segs = path.replace(/%2e/gi, '.').split('/');
  const out: string[] = [];
  for (let i = 1; i < segs.length; i++) {
    const s = segs[i]!;
    if (s === '.' || (s === '' && i < segs.length - 1)) continue;
    if (s === '..') {
      out.pop();
      continue;
    }
    out.push(s);
  }
  const last = segs[segs.length - 1];
  if ((last === '.' || last === '..') && out[out.length - 1] !== '') out.push('');
  return '/' + out.join('/');
}
