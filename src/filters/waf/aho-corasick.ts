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
  // Dense automaton (see buildDense): delta[state * classes + classOf[byte]];
  // hitOf[state]: the node whose phrase a match ending there reports, or -1.
  private classOf: Uint8Array | undefined;
  private classes = 0;
  private delta: Uint16Array | Int32Array | undefined;
  private hitOf: Int32Array | undefined;

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
    this.buildDense(queue);
  }

  /**
   * A DFA over byte classes (one table read per input byte instead of map
   * lookups and fail links), when every phrase is bytes and the table stays
   * small; otherwise findFirst walks the trie.
   */
  private buildDense(bfs: readonly number[]): void {
    const n = this.next.length;
    const classOf = new Uint8Array(256);
    let nc = 1;
    for (const m of this.next) {
      for (const c of m.keys()) {
        if (c > 0xff) return;
        if (classOf[c] === 0) {
          if (nc === 255) return;
          classOf[c] = nc++;
        }
      }
    }
    if (n * nc > 1 << 22) return;
    // The byte each class stands for (trie keys are folded: never upper-case).
    const byClass: number[] = new Array<number>(nc).fill(-1);
    for (let c = 0; c < 256; c++) if (classOf[c] !== 0) byClass[classOf[c]!] = c;
    // Folded input: an upper-case letter reads as its lower-case class.
    for (let c = 0x41; c <= 0x5a; c++) classOf[c] = classOf[c + 32]!;
    const delta = n < 0x10000 ? new Uint16Array(n * nc) : new Int32Array(n * nc);
    // Root row: its goto function (0 on a miss). Class 0 (no phrase uses the byte) always leads to the root.
    for (let k = 1; k < nc; k++) delta[k] = this.rootNext[byClass[k]!]!;
    for (const s of bfs) {
      const f = this.fail[s]!;
      for (let k = 1; k < nc; k++) {
        const t = this.next[s]!.get(byClass[k]!);
        delta[s * nc + k] = t !== undefined ? t : delta[f * nc + k]!;
      }
    }
    const hitOf = new Int32Array(n);
    for (let s = 0; s < n; s++) hitOf[s] = this.term[s]! >= 0 ? s : this.dict[s]!;
    this.classOf = classOf;
    this.classes = nc;
    this.delta = delta;
    this.hitOf = hitOf;
  }

  // Goto function; the root never fails.
  private step(s: number, c: number): number | undefined {
    if (s === 0) return c < 256 ? this.rootNext[c] : this.rootWide.get(c) ?? 0;
    return this.next[s].get(c);
  }

  /** The match that ends first in the input (the longest phrase ending there). */
  findFirst(input: string): PhraseMatch | undefined {
    if (this.phrases.length === 0) return undefined;
    const delta = this.delta;
    if (delta !== undefined) {
      const classOf = this.classOf!;
      const hitOf = this.hitOf!;
      const nc = this.classes;
      let s = 0;
      for (let i = 0; i < input.length; i++) {
        const c = input.charCodeAt(i);
        s = delta[s * nc + (c > 0xff ? 0 : classOf[c]!)]!;
        const hit = hitOf[s]!;
        if (hit >= 0) return { phrase: this.phrases[this.term[hit]!]!, index: i + 1 - this.depth[hit]! };
      }
      return undefined;
    }
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
