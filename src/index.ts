/** smolcluster's library API. */
export * from './tensor/index.js';
export * from './nn/index.js';
export * from './data/index.js';
export { train, specFor, type TrainObserver, type StepRecord, type EvalRecord, type TrainOutcome, type TrainData } from './train/loop.js';
export { evaluate, type EvalResult } from './train/evaluate.js';
export { type TrainConfig, defaultConfig } from './train/config.js';
export type { Strategy, StrategyContext, CommTiming } from './train/strategy.js';
export { LocalStrategy } from './train/strategies/local.js';
export { buildResult, type TrainResult } from './train/result.js';
export { Rng } from './util/rng.js';
