/**
 * Seeded pseudo-random numbers: one seed determines initialisation, dropout masks, shuffling and
 * sharding, so runs are reproducible and N workers can be checked against one.
 *
 * The generator is xoshiro128** (32-bit state words, fast in JS integer arithmetic), seeded through
 * splitmix32 so that nearby seeds give unrelated streams.
 */
/** What getState() returns: JSON-safe. */
export interface RngState {
  words: number[];
  spareNormal: number | null;
}

export class Rng {
  private s0 = 0;
  private s1 = 0;
  private s2 = 0;
  private s3 = 0;
  private spareNormal: number | null = null;

  constructor(seed: number) {
    let x = seed >>> 0;
    const next = (): number => {
      x = (x + 0x9e3779b9) | 0;
      let z = x;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
      return (z ^ (z >>> 16)) >>> 0;
    };
    this.s0 = next();
    this.s1 = next();
    this.s2 = next();
    this.s3 = next();
  }

  /** The generator's whole state (for checkpoints): four 32-bit words and the cached normal. */
  getState(): RngState {
    return { words: [this.s0, this.s1, this.s2, this.s3], spareNormal: this.spareNormal };
  }

  /** Continues exactly where the generator that gave `state` stood. */
  setState(state: RngState): void {
    const w = state.words;
    if (!Array.isArray(w) || w.length !== 4 || !w.every((x) => Number.isInteger(x) && x >= -(2 ** 31) && x < 2 ** 32)) {
      throw new RangeError('Rng.setState: expected four 32-bit words');
    }
    if (state.spareNormal !== null && typeof state.spareNormal !== 'number') throw new RangeError('Rng.setState: spareNormal must be a number or null');
    [this.s0, this.s1, this.s2, this.s3] = w.map((x) => x | 0);
    this.spareNormal = state.spareNormal;
  }

  /** A uniformly distributed unsigned 32-bit integer. */
  nextUint32(): number {
    const result = Math.imul(rotl(Math.imul(this.s1, 5), 7), 9) >>> 0;
    const t = this.s1 << 9;
    this.s2 ^= this.s0;
    this.s3 ^= this.s1;
    this.s1 ^= this.s2;
    this.s0 ^= this.s3;
    this.s2 ^= t;
    this.s3 = rotl(this.s3, 11);
    return result;
  }

  /** Uniform in [0, 1). */
  uniform(): number {
    return this.nextUint32() / 4294967296;
  }

  /** Uniform integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.uniform() * n);
  }

  /** Standard normal (Box–Muller, caching the second value). */
  normal(): number {
    if (this.spareNormal !== null) {
      const v = this.spareNormal;
      this.spareNormal = null;
      return v;
    }
    let u = 0;
    while (u === 0) u = this.uniform();
    const v = this.uniform();
    const r = Math.sqrt(-2 * Math.log(u));
    this.spareNormal = r * Math.sin(2 * Math.PI * v);
    return r * Math.cos(2 * Math.PI * v);
  }

  /** In-place Fisher–Yates shuffle. */
  shuffle<T extends { length: number; [i: number]: unknown }>(a: T): T {
    for (let i = a.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      const t = a[i];
      a[i] = a[j];
      a[j] = t;
    }
    return a;
  }

  /** A permutation of 0..n-1. */
  permutation(n: number): Int32Array {
    const p = new Int32Array(n);
    for (let i = 0; i < n; i++) p[i] = i;
    return this.shuffle(p);
  }

  /** A new generator derived from this seed and a stream id (e.g. per layer, per epoch, per rank). */
  static derive(seed: number, ...stream: number[]): Rng {
    let h = seed >>> 0;
    for (const s of stream) h = (Math.imul(h ^ (s >>> 0), 0x9e3779b1) + 0x7f4a7c15) >>> 0;
    return new Rng(h);
  }
}

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}
