/**
 * The option tables (one entry per option: spec.ts) and the types derived from them. The training
 * options are what `train`, `worker`, `server` and `store` share; a launcher passes the forwarded
 * ones on to its workers (argv.ts).
 */
import { MODEL_OPTIONS } from './model.js';
import { LORA_OPTIONS } from './lora.js';
import { OPTIMIZATION_OPTIONS } from './optimization.js';
import { TRAINER_OPTIONS } from './trainer.js';
import { TRAINING_SAMPLE_OPTIONS } from './generation.js';
import { PROCESS_OPTIONS } from './process.js';
import { EXCHANGE_OPTIONS, MEMBERSHIP_OPTIONS, STRATEGY_OPTIONS } from './cluster.js';
import { CONFIG_FILE_OPTIONS, DASHBOARD_OPTIONS, SINK_OPTIONS, WORKER_DASHBOARD_OPTIONS } from './outputs.js';
import type { OptionValues } from './spec.js';

/** Every training option, in --help order. */
export const TRAIN_OPTIONS = {
  ...MODEL_OPTIONS,
  ...LORA_OPTIONS,
  ...OPTIMIZATION_OPTIONS,
  ...TRAINER_OPTIONS,
  ...TRAINING_SAMPLE_OPTIONS,
  ...PROCESS_OPTIONS,
  ...STRATEGY_OPTIONS,
  ...EXCHANGE_OPTIONS,
  ...MEMBERSHIP_OPTIONS,
} as const;

export { CONFIG_FILE_OPTIONS, DASHBOARD_OPTIONS, EXCHANGE_OPTIONS, SINK_OPTIONS, WORKER_DASHBOARD_OPTIONS };

/** The parsed values of the training options. */
export type TrainOptionValues = OptionValues<typeof TRAIN_OPTIONS>;
/** The gradient exchange's options (allreduce's buckets and overlap, compression, DiLoCo's outer loop). */
export type ExchangeOptionValues = OptionValues<typeof EXCHANGE_OPTIONS>;

/**
 * What every training command's flags hold: the training options, the sinks, `train`'s dashboard
 * and the configuration files (`train`, `worker`, `server`, `run` and the launcher read them).
 */
export type TrainFlags = TrainOptionValues & OptionValues<typeof SINK_OPTIONS> & Partial<OptionValues<typeof DASHBOARD_OPTIONS>> & OptionValues<typeof CONFIG_FILE_OPTIONS>;

/** The options a training config field of the same name takes its value from (configFrom). */
export const CONFIG_OPTION_NAMES = (Object.keys(TRAIN_OPTIONS) as Array<keyof typeof TRAIN_OPTIONS>).filter((k) => TRAIN_OPTIONS[k].config === true);

export * from './spec.js';
export * from './choices.js';
export { CHAT_OPTIONS, GENERATE_OPTIONS, MODEL_SOURCE_OPTIONS, SAMPLING_OPTIONS } from './generation.js';
export { EVAL_OPTIONS } from './eval.js';
export { GRPO_OPTIONS, ROLLOUT_WORKER_OPTIONS, TASK_DATA_OPTIONS } from './grpo.js';
export { STAGE_OPTIONS, STAGE_PROCESS_OPTIONS } from './stages.js';
