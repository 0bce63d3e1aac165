/**
 * `smolcluster eval`: what to score a model on (docs/EVAL.md) — a data file's perplexity, task files
 * scored as lm-evaluation-harness scores them — and a second model to set beside it.
 */
import { appended, positiveInt } from './parsers.js';
import { toggle, valued } from './spec.js';
import { MODEL_SOURCE_OPTIONS } from './generation.js';

export const EVAL_OPTIONS = {
  ...MODEL_SOURCE_OPTIONS,
  dataFile: valued<string>({ arg: '<path>', help: 'score a text, JSONL or Parquet file (or a folder or glob of them): loss, perplexity, token accuracy, tokens/s; chat JSONL is scored on the assistant\'s tokens, as training masks it', forward: false }),
  textField: valued<string>({ arg: '<name>', help: 'JSONL and Parquet: the field holding each document\'s text (default text)', forward: false }),
  task: valued({ arg: '<file.jsonl>', help: 'score a task file: multiple choice (acc, acc_norm), loglikelihood (acc, perplexity) or generate-until (exact_match), as lm-evaluation-harness scores them (repeatable)', parse: appended, repeatable: true, forward: false }),
  context: valued({ arg: '<n>', help: 'tokens per window or row (default: the model\'s positions, at most 2048)', parse: positiveInt, forward: false }),
  stride: valued({ arg: '<n>', help: 'tokens between the starts of a data file\'s windows (default: --context, no overlap); less scores each token after more context, as transformers\' perplexity guide does', parse: positiveInt, forward: false }),
  batchSize: valued({ arg: '<n>', help: 'rows per forward at most (default 8)', parse: positiveInt, forward: false }),
  compare: valued<string>({ arg: '<src>', help: 'a second model, as --model names one (a fine-tune beside its base), scored on the same file and tasks and printed side by side', forward: false }),
  compareAdapter: valued<string>({ arg: '<dir>', help: 'a PEFT LoRA adapter folder merged into the --compare model (default: --compare as it is)', forward: false }),
  workers: valued({ arg: '<n>', help: 'split the windows, examples and documents over N processes on this machine, each holding the model (default 1); the figures are one process\'s', parse: positiveInt, default: 1, forward: false }),
  json: toggle({ help: 'print the figures as one JSON object on stdout (for CI)', forward: false }),
} as const;
