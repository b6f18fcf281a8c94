// Every failure has a name (Envoy-style response flags). The flag goes into the
// access log, the x-meshgate-flag response header and the metrics.
export const FLAGS = {
  NR: { status: 404, error: 'no route matched' },
  UH: { status: 503, error: 'no healthy upstream' },
  UF: { status: 502, error: 'upstream connect failure' },
  UC: { status: 502, error: 'upstream connection terminated' },
  UT: { status: 504, error: 'upstream request timeout' },
  UO: { status: 503, error: 'circuit breaker open' },
  URX: { status: 503, error: 'upstream retry limit exceeded' },
  RL: { status: 429, error: 'rate limited' },
  CC: { status: 429, error: 'blocked by CC protection' },
  WAF: { status: 403, error: 'blocked by WAF' },
  UA: { status: 401, error: 'unauthorized' },
  IP: { status: 403, error: 'blocked by IP restriction' },
  SP: { status: 503, error: 'gateway overloaded' },
  DC: { status: 499, error: 'downstream closed' },
  BR: { status: 400, error: 'bad request' },
  UP: { status: 502, error: 'upstream protocol error' },
} as const;

export type Flag = keyof typeof FLAGS;
