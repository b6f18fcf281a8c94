// A seeded random source for tests that generate inputs: a 32-bit linear
// congruential generator (Math.imul keeps the product exact; a plain
// multiplication in doubles loses the low bits and the sequence degenerates),
// returning its high bits, the random ones.

/** A function giving integers in [0, n), the same sequence for the same seed. */
export function seeded(seed: number): (n: number) => number {
  let s = seed >>> 0;
  return (n) => {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    return (s >>> 16) % n;
  };
}
