// Aho-Corasick phrase matcher for `@pm` / `@pmFromFile`: one pass over the
// input whatever the number of phrases. Case-insensitive over ASCII letters
// only (bytes above 0x7f compare exactly), like ModSecurity's C-locale tolower.

export interface PhraseMatch {
  /** The phrase as written in the list. */
  phrase: string;
  /** Offset of the match in the input. */
  index: number;
}

function fold(c: number): number {
  return c >= 0x41 && c <= 0x5a ? c + 32 : c;
}

export class AhoCorasick {
  private readonly phrases: string[] = [];
  // Node 0 is the root. Transitions of the root are dense (it is visited
  // after every mismatch); the others are sparse.
  private readonly rootNext = new Int32Array(256).fill(0);
  private readonly rootWide = new Map<number, number>(); // chars above 0xff
  private readonly next: Array<Map<number, number>> = [new Map()];
  private readonly depth: number[] = [0];
  private fail: Int32Array = new Int32Array(1);
  /** Phrase index ending exactly at the node, or -1. */
  private term: number[] = [-1];
  /** Nearest node on the fail chain (excluding itself) that ends a phrase, or -1. */
  private dict: Int32Array = new Int32Array(1).fill(-1);

  constructor(phrases: Iterable<string>) {
    for (const p of phrases) this.add(p);
    this.build();
  }

  get size(): number {
    return this.phrases.length;
  }

  private add(phrase: string): void {
    if (phrase === '') return; // an empty phrase would match everything
    let s = 0;
    for (let i = 0; i < phrase.length; i++) {
      const c = fold(phrase.charCodeAt(i));
      let t = this.next[s].get(c);
      if (t === undefined) {
        t = this.next.length;
        this.next.push(new Map());
        this.depth.push(this.depth[s] + 1);
        this.term.push(-1);
        this.next[s].set(c, t);
      }
      s = t;
    }
    if (this.term[s] < 0) {
      this.term[s] = this.phrases.length;
      this.phrases.push(phrase);
    }
  }

  private build(): void {
    const n = this.next.length;
    this.fail = new Int32Array(n);
    this.dict = new Int32Array(n).fill(-1);
    for (const [c, t] of this.next[0]) {
      if (c < 256) this.rootNext[c] = t;
      else this.rootWide.set(c, t);
    }
    // Breadth-first, so a node's fail target is finished before the node.
    const queue: number[] = [];
    for (const t of this.next[0].values()) queue.push(t);
    for (let qi = 0; qi < queue.length; qi++) {
      const s = queue[qi];
      for (const [c, t] of this.next[s]) {
        let f = this.fail[s];
        let g = this.step(f, c);
        while (g === undefined) {
          f = this.fail[f];
          g = this.step(f, c);
        }
        this.fail[t] = g === t ? 0 : g;
        const ft = this.fail[t];
        this.dict[t] = this.term[ft] >= 0 ? ft : this.dict[ft];
        queue.push(t);
      }
    }
  }

  // Goto function; the root never fails.
  private step(s: number, c: number): number | undefined {
    if (s === 0) return c < 256 ? this.rootNext[c] : this.rootWide.get(c) ?? 0;
    return this.next[s].get(c);
  }

  /** The match that ends first in the input (the longest phrase ending there). */
  findFirst(input: string): PhraseMatch | undefined {
    if (this.phrases.length === 0) return undefined;
    const next = this.next;
    const fail = this.fail;
    const term = this.term;
    const dict = this.dict;
    const rootNext = this.rootNext;
    let s = 0;
    for (let i = 0; i < input.length; i++) {
      const c = fold(input.charCodeAt(i));
      for (;;) {
        if (s === 0) {
          s = c < 256 ? rootNext[c] : this.rootWide.get(c) ?? 0;
          break;
        }
        const t = next[s].get(c);
        if (t !== undefined) {
          s = t;
          break;
        }
        s = fail[s];
      }
      if (s === 0) continue;
      const hit = term[s] >= 0 ? s : dict[s];
      if (hit >= 0) {
        return { phrase: this.phrases[term[hit]], index: i + 1 - this.depth[hit] };
      }
    }
    return undefined;
  }
}
