/**
 * synthetic_text: token sequences from a seeded random sparse Markov chain (markov.ts), so a
 * language model's loss has a known floor (`bestLoss`, the chain's exact conditional entropy) and a
 * known ceiling (log vocab, a model that learned nothing).
 *
 * For the language-model task the labels are the next tokens; for masked-lm (BERT) 15 % of the
 * positions are chosen, their labels are the original tokens (all other labels IGNORE_INDEX), and
 * their inputs become the mask token (80 %), a random token (10 %) or stay (10 %), as in BERT. The
 * mask token is `vocab`, so a masked-LM set has vocabSize = vocab + 1.
 *
 * Sequence i of a split comes from its own Rng stream; train and test share the chain.
 */
import { withDefaults } from '../util/defaults.js';
import { Rng } from '../util/rng.js';
import { IGNORE_INDEX, type TokenDataset, type TokenTask } from './dataset.js';
import { MarkovChain } from './markov.js';

export interface SyntheticTextOptions {
  seed: number;
  samples: number;
  split: 'train' | 'test';
  task: TokenTask;
  contextLength?: number;
  vocab?: number;
  order?: number;
  successors?: number;
  epsilon?: number;
  /** masked-lm: fraction of positions scored. */
  maskProbability?: number;
}

/**
 * Order 1 by default, so a short run can make visible progress: at order 2 (vocab² = 4096 states to
 * learn) gpt2-tiny's test loss was 4.143 after 100 steps and 4.099 after 240 (docs/DATA.md).
 */
export const SYNTHETIC_TEXT_DEFAULTS = { contextLength: 64, vocab: 64, order: 1, successors: 4, epsilon: 0.05, maskProbability: 0.15 } as const;

export interface SyntheticText extends TokenDataset {
  /** language-model: the least achievable mean loss per position (nats); perplexity floor exp(bestLoss). */
  readonly bestLoss: number | null;
  readonly entropyRate: number;
}

const STREAM = { train: 22, test: 23 } as const;

export function syntheticText(options: SyntheticTextOptions): SyntheticText {
  const o = withDefaults(SYNTHETIC_TEXT_DEFAULTS, options);
  if (!Number.isSafeInteger(o.samples) || o.samples < 1) throw new RangeError(`synthetic_text: samples must be a positive integer, got ${o.samples}`);
  if (!Number.isSafeInteger(o.contextLength) || o.contextLength < 2) throw new RangeError(`synthetic_text: contextLength must be an integer ≥ 2, got ${o.contextLength}`);
  const chain = new MarkovChain({ seed: o.seed, vocab: o.vocab, order: o.order, successors: o.successors, epsilon: o.epsilon });
  const T = o.contextLength;
  const lm = o.task === 'language-model';
  const inputs = new Int32Array(o.samples * T);
  const labels = new Int32Array(o.samples * T);
  const seq = new Int32Array(lm ? T + 1 : T);
  for (let i = 0; i < o.samples; i++) {
    const rng = Rng.derive(o.seed, STREAM[o.split], i);
    chain.sample(rng, seq);
    const x = inputs.subarray(i * T, (i + 1) * T);
    const y = labels.subarray(i * T, (i + 1) * T);
    if (lm) {
      for (let t = 0; t < T; t++) {
        x[t] = seq[t];
        y[t] = seq[t + 1];
      }
    } else {
      maskTokens(rng, seq, x, y, o.vocab, o.maskProbability);
    }
  }
  return {
    task: o.task,
    name: `synthetic_text-${o.seed}-${o.split}`,
    size: o.samples,
    inputShape: [T],
    inputs,
    labels,
    vocabSize: lm ? o.vocab : o.vocab + 1,
    ...(lm ? {} : { maskToken: o.vocab }),
    bestLoss: lm ? chain.bestLoss(T) : null,
    entropyRate: chain.entropyRate(),
  };
}

/** BERT's masking: chosen positions are scored; 80 % become the mask token, 10 % a random token, 10 % stay. */
export function maskTokens(rng: Rng, seq: Int32Array, x: Int32Array, y: Int32Array, vocab: number, probability: number): void {
  for (let t = 0; t < seq.length; t++) {
    x[t] = seq[t];
    y[t] = IGNORE_INDEX;
    if (rng.uniform() >= probability) continue;
    y[t] = seq[t];
    const r = rng.uniform();
    if (r < 0.8) x[t] = vocab;
    else if (r < 0.9) x[t] = rng.int(vocab);
  }
}
