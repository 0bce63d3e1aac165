/**
 * A random sparse Markov chain over a vocabulary, of order n: the next token depends on the last n.
 * Each state (n tokens) has `successors` likely next tokens with random probabilities, mixed with a
 * small uniform part ε over the whole vocabulary, so every token can follow every state: the chain is
 * irreducible and aperiodic, its stationary distribution π is unique, and its entropy is exact.
 *
 * That makes the best achievable loss known: a model that predicts token t+1 from tokens 0..t of a
 * stationary sequence can do no better than the conditional entropies H(X_{t+1} | X_0..X_t), which
 * are the entropy rate once t ≥ n−1 (the whole state is visible) and come from π's marginals before.
 */
import { Rng } from '../util/rng.js';

export interface MarkovOptions {
  seed: number;
  vocab: number;
  order: number;
  successors: number;
  /** Weight of the uniform part of every next-token distribution. */
  epsilon: number;
}

export class MarkovChain {
  readonly states: number;
  /** successors × states: the likely next tokens of each state. */
  private readonly next: Int32Array;
  /** successors × states: (1 − ε) × their probabilities (the uniform ε/V comes on top). */
  private readonly weight: Float64Array;
  /** Stationary distribution over states (state = tokens base vocab, oldest first). */
  readonly stationary: Float64Array;
  private readonly cumulative: Float64Array;

  constructor(readonly o: MarkovOptions) {
    const { vocab, order, successors, epsilon } = o;
    if (!Number.isSafeInteger(vocab) || vocab < 2) throw new RangeError(`markov: vocab must be an integer ≥ 2, got ${vocab}`);
    if (!Number.isSafeInteger(order) || order < 1 || vocab ** order > 1 << 22) {
      throw new RangeError(`markov: order must be ≥ 1 with vocab^order ≤ 2^22 states, got order ${order} for vocab ${vocab}`);
    }
    if (!Number.isSafeInteger(successors) || successors < 1 || successors > vocab) throw new RangeError(`markov: successors must be in [1, ${vocab}], got ${successors}`);
    if (!(epsilon > 0 && epsilon < 1)) throw new RangeError(`markov: epsilon must be in (0, 1), got ${epsilon}`);
    this.states = vocab ** order;
    this.next = new Int32Array(this.states * successors);
    this.weight = new Float64Array(this.states * successors);
    const rng = Rng.derive(o.seed, 21);
    for (let s = 0; s < this.states; s++) {
      const picked = rng.permutation(vocab).subarray(0, successors);
      // Exponential draws normalised: a Dirichlet(1) distribution over the successors.
      const w = Array.from(picked, () => -Math.log(1 - rng.uniform()));
      const total = w.reduce((a, b) => a + b, 0);
      for (let j = 0; j < successors; j++) {
        this.next[s * successors + j] = picked[j];
        this.weight[s * successors + j] = ((1 - epsilon) * w[j]) / total;
      }
    }
    this.stationary = this.solveStationary();
    this.cumulative = new Float64Array(this.states);
    let acc = 0;
    for (let s = 0; s < this.states; s++) this.cumulative[s] = acc += this.stationary[s];
  }

  /** Fills `out` with a stationary sequence: the first `order` tokens drawn from π, then the chain. */
  sample(rng: Rng, out: Int32Array): void {
    const { vocab, order, successors, epsilon } = this.o;
    if (out.length < order) throw new RangeError(`markov: a sequence must hold at least order = ${order} tokens, got ${out.length}`);
    let state = this.drawState(rng.uniform());
    for (let i = order - 1, rest = state; i >= 0; i--, rest = Math.floor(rest / vocab)) out[i] = rest % vocab;
    for (let t = order; t < out.length; t++) {
      let token: number;
      if (rng.uniform() < epsilon) token = rng.int(vocab);
      else {
        let u = rng.uniform() * (1 - epsilon);
        let j = 0;
        while (j < successors - 1 && u >= this.weight[state * successors + j]) u -= this.weight[state * successors + j++];
        token = this.next[state * successors + j];
      }
      out[t] = token;
      state = (state % (this.states / vocab)) * vocab + token;
    }
  }

  /** Entropy (nats) of the next token given the whole state, averaged over π: the entropy rate. */
  entropyRate(): number {
    const { vocab, successors, epsilon } = this.o;
    const u = epsilon / vocab;
    let h = 0;
    for (let s = 0; s < this.states; s++) {
      let row = (vocab - successors) * -u * Math.log(u);
      for (let j = 0; j < successors; j++) {
        const p = this.weight[s * successors + j] + u;
        row -= p * Math.log(p);
      }
      h += this.stationary[s] * row;
    }
    return h;
  }

  /**
   * The least expected cross-entropy per position of any predictor of token t+1 from tokens 0..t,
   * over stationary sequences of `length` predicted positions (a language-model window).
   */
  bestLoss(length: number): number {
    const { order } = this.o;
    const rate = this.entropyRate();
    // H(first m tokens) for m = 1..order, from π's marginals.
    const prefix = [0];
    for (let m = 1; m <= order; m++) prefix.push(this.prefixEntropy(m));
    let total = 0;
    for (let t = 0; t < length; t++) total += t + 2 <= order ? prefix[t + 2] - prefix[t + 1] : rate;
    return total / length;
  }

  /**
   * P(token | the tokens before it in a stationary sequence): the chain's own prediction once the
   * whole state is visible, π's marginals before that. The Bayes-optimal model `bestLoss` describes.
   */
  probability(before: ArrayLike<number>, token: number): number {
    const { vocab, order, successors, epsilon } = this.o;
    if (before.length < order) {
      const context = Array.from(before);
      return this.prefixMass([...context, token]) / this.prefixMass(context);
    }
    let state = 0;
    for (let i = before.length - order; i < before.length; i++) state = state * vocab + before[i];
    let p = epsilon / vocab;
    for (let j = 0; j < successors; j++) if (this.next[state * successors + j] === token) p += this.weight[state * successors + j];
    return p;
  }

  /** π's mass on the states that start with `tokens` (at most `order` of them). */
  private prefixMass(tokens: number[]): number {
    const { vocab, order } = this.o;
    let g = 0;
    for (const t of tokens) g = g * vocab + t;
    const tail = vocab ** (order - tokens.length);
    let p = 0;
    for (let r = 0; r < tail; r++) p += this.stationary[g * tail + r];
    return p;
  }

  private prefixEntropy(m: number): number {
    const { vocab, order } = this.o;
    const groups = vocab ** m;
    const tail = vocab ** (order - m);
    let h = 0;
    for (let g = 0; g < groups; g++) {
      let p = 0;
      for (let r = 0; r < tail; r++) p += this.stationary[g * tail + r];
      if (p > 0) h -= p * Math.log(p);
    }
    return h;
  }

  private drawState(u: number): number {
    let lo = 0;
    let hi = this.states - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.cumulative[mid] > u) hi = mid;
      else lo = mid + 1;
    }
    return lo;
  }

  /** Power iteration: the uniform part makes the chain mix fast (a contraction by 1 − ε per step at worst). */
  private solveStationary(): Float64Array {
    const { vocab, successors, epsilon } = this.o;
    const shift = this.states / vocab;
    let pi = new Float64Array(this.states).fill(1 / this.states);
    for (let iter = 0; iter < 10_000; iter++) {
      const nextPi = new Float64Array(this.states);
      // Uniform part: from any state with suffix a, every token y follows with ε/V.
      const suffixMass = new Float64Array(shift);
      for (let s = 0; s < this.states; s++) suffixMass[s % shift] += pi[s];
      for (let a = 0; a < shift; a++) for (let y = 0; y < vocab; y++) nextPi[a * vocab + y] += (suffixMass[a] * epsilon) / vocab;
      for (let s = 0; s < this.states; s++) {
        const base = (s % shift) * vocab;
        for (let j = 0; j < successors; j++) nextPi[base + this.next[s * successors + j]] += pi[s] * this.weight[s * successors + j];
      }
      let diff = 0;
      for (let s = 0; s < this.states; s++) diff += Math.abs(nextPi[s] - pi[s]);
      pi = nextPi;
      if (diff < 1e-13) break;
    }
    return pi;
  }
}
