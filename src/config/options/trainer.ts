/**
 * What a Hugging Face Trainer user reaches for beyond the optimizer: early stopping on the
 * evaluation loss (its EarlyStoppingCallback), keeping the best model (load_best_model_at_end with
 * metric_for_best_model=eval_loss) and label smoothing (label_smoothing_factor).
 */
import { nonNegativeNumber, positiveInt, probability } from './parsers.js';
import { toggle, valued } from './spec.js';

export const TRAINER_OPTIONS = {
  labelSmoothing: valued({
    arg: '<eps>', help: 'smooth the cross-entropy\'s targets to (1 − eps)·onehot + eps / classes, as torch\'s label_smoothing (training loss only; evaluation stays the plain cross-entropy; default 0)',
    parse: probability, forward: true, config: true,
  }),
  earlyStoppingPatience: valued({
    arg: '<n>', help: 'stop when the evaluation loss has not improved for N evaluations in a row (every --eval-every steps, else at each epoch\'s end); keeps the best model as --save-best does',
    parse: positiveInt, forward: true, config: true,
  }),
  earlyStoppingThreshold: valued({
    arg: '<delta>', help: 'with --early-stopping-patience: an evaluation improves only when it lowers the best loss by more than this (default 0)',
    parse: nonNegativeNumber, forward: true, config: true,
  }),
  saveBest: toggle({
    help: 'keep the model of the lowest evaluation loss in best/ beside the checkpoints, and --save it instead of the last (on with --early-stopping-patience)',
    forward: true, config: true,
  }),
} as const;
