/**
 * smolcluster's library API: what `smolcluster train` does, as functions and classes you import
 * from `'smolcluster'`. docs/API.md is the guided tour (a complete training loop, tested);
 * docs/api/ is the reference generated from these exports (`npm run docs:api`).
 *
 * Everything exported here is the stable surface; a module not re-exported from this file is an
 * internal of its layer and may change without notice.
 *
 * @packageDocumentation
 */

// The tensor engine: Tensor, autograd (backward, noGrad), ops, backends (setBackend, nativeAvailable).
export * from './tensor/index.js';
// Layers, Module, models (createModel, defaultSpec, presets), optimizers and LR schedules, model
// files: our own format (saveModel/loadModel, saveCheckpoint/loadCheckpoint) and safetensors.
export * from './nn/index.js';
// Hugging Face model folders in and out: config.json ⇄ spec (gpt2, bert, llama / qwen2 / qwen3),
// model.safetensors or its shards, the tokenizer files copied through.
export {
  loadPretrained, saveFolder, readHfConfig, specFromFolder, isFolderTarget, TOKENIZER_FILES, type PretrainedModel, type SaveFolderOptions,
} from './nn/interchange/hf_folder.js';
export { specFromHfConfig, hfConfigFromSpec, hfTokenIds, type HfConfig, type HfTokenIds } from './nn/interchange/hf_config.js';
export { loadFolderWeights, externalTensors } from './nn/interchange/model_io.js';
export { DEFAULT_SHARD_BYTES, parseByteSize } from './nn/interchange/hf_shards.js';

// Generation: a KV cache over GPT-2 and the Llama family, sampling, and generate() itself.
export { generate, generateStream, cachedStep, type CausalLm, type GenerateOptions, type GenerateResult, type StopReason } from './generate/generate.js';
export { KvCache, SequenceCache, type LayerSlot } from './generate/kv_cache.js';
export { DecodeBatch, generateBatch } from './generate/batch.js';
export { holdBf16Casts, heldBf16Casts, releaseBf16Casts, HeldCasts } from './generate/model_casts.js';
export { Sequence, type SequenceOptions } from './generate/sequence.js';
export type { Precision } from './tensor/precision.js';
export type { AttentionCache, DecodeSlot, KvShape } from './nn/layers/attention.js';
export { type SamplingOptions, sampleToken, applyRepetitionPenalty, applyLogitBias, applyPresenceFrequency, argmax, topK, topP, minP, draw } from './generate/sampling.js';
export { type TokenLogprob, type PositionLogprobs, positionLogprobs, logSumExp, topIds } from './generate/logprobs.js';
export { JsonGrammar, JsonConstraint, TokenVocabulary, type TokenMask, type GrammarTrigger } from './generate/token_mask.js';
export { TokenTrie } from './generate/token_trie.js';
export { compileSchema, anyJson, SchemaError, type JsonNode, type JsonProp, type CompiledSchema } from './generate/json_schema_grammar.js';
export { type JsonState, type Frame as JsonFrame, type Step as JsonStep, type Ended as JsonEnded } from './generate/json_automaton.js';
// What generate / chat / serve load from --model, and the folder's chat template.
export { loadGenerator, type Generator, type LoadGeneratorOptions, type CausalLmSpec } from './generate/load_generator.js';
export { type InferenceMemory, InsufficientMemoryError } from './generate/inference_memory.js';
export { streamReply, promptIds, replySummary, DEFAULT_MAX_NEW_TOKENS, type Reply, type ReplyOptions, type ReplyModel, type ReplyTokens } from './generate/reply.js';
export { TextStream } from './generate/text_stream.js';
export { Conversation } from './generate/conversation.js';
export { resolveModelSource, ModelSourceError, NoWeightsYetError, type ResolvedSource, type RunRecord, type AdapterSource } from './generate/model_source.js';
export { loadChatTemplate, chatTemplateFrom, endOfTurn, ChatTemplateError, type ChatTemplate, type ChatMessage, type SpecialTokens } from './generate/chat_template.js';
// Datasets (MNIST, CIFAR-10, synthetic images/regression/classification/text, text files), the
// deterministic sharded sampler and the batch loader.
export * from './data/index.js';
// Process groups, collectives, the TCP/in-process transports and the rendezvous store.
export * from './comm/index.js';

// GRPO's pieces (issue 47; docs/RL.md): advantages, completions, per-token log-probabilities, TRL's
// loss, and the rewards (built-in, user modules in a worker, weighted). The `grpo` command is not built yet.
export { groupAdvantages, SCALE_REWARDS, STD_EPSILON, type ScaleRewards, type Advantages } from './rl/advantages.js';
export { completionBatch, completionMetrics, type Rollout, type CompletionBatch, type CompletionMetrics } from './rl/completions.js';
export { tokenLogps, type TokenLogps } from './rl/token_logps.js';
export { grpoLoss, LOSS_TYPES, type LossType, type GrpoLossOptions, type GrpoLossInputs, type GrpoMetrics, type GrpoLoss } from './rl/grpo_loss.js';
export type { Reward, RewardRow } from './rl/rewards/reward.js';
export { exactNumberReward, formatReward, type FormatRewardOptions } from './rl/rewards/builtin.js';
export { finalNumber } from './rl/rewards/final_number.js';
export { userModuleReward, DEFAULT_REWARD_TIMEOUT_MS, type UserRewardOptions } from './rl/rewards/user_module.js';
export { scoreRewards, type WeightedReward, type ScoreItem, type RewardFailure, type RewardScores, type ScoreOptions } from './rl/rewards/combine.js';
// The one training loop and its configuration.
export {
  train, specFor, type TrainObserver, type StepRecord, type EvalRecord, type SampleRecord, type StepMarks, type TrainOutcome, type TrainData, type TrainGuards,
  type BestKeeper,
} from './train/loop/loop.js';
// Early stopping and the best model (--early-stopping-patience, --save-best).
export { EvalWatch, type EvalVerdict, type WatchState } from './train/loop/early_stopping.js';
export { BestModel, type BestRecord } from './train/run/best_model.js';
export type { BucketSpan, Rescheduled, StepInfo } from './metrics/records.js';
export type { BatchShares } from './train/loop/shares.js';
export { evaluate, type EvalResult } from './train/loop/evaluate.js';
export { type TrainConfig, defaultConfig, DATASETS, type DatasetName } from './train/run/config.js';
export type { AutoPrecision, Bf16Instructions } from './train/engine/precision_auto.js';
export { loadTrainData, SYNTHETIC_REGRESSION } from './train/run/run.js';
export { buildResult, type TrainResult, type ResultInfo } from './train/run/result.js';
export type { ResultFile, RankTotals } from './metrics/result_file.js';

// Training checkpoints (model, optimizer state, RNG streams and loop position; resume).
export {
  Checkpointer, ResumeError, checkpointFile, listCheckpoints, type CheckpointOptions, type LoopPosition, type RankState, type Restored,
} from './train/run/checkpoints.js';
export { InterruptedError, StopRequest } from './train/run/interrupt.js';

// Strategies: how ranks combine their work. A strategy goes to `train` as its third argument.
export type {
  Strategy, StrategyContext, CommTiming, PlannedStep, UpdateResult, DataShard, ModelBuildContext,
  GradientExchange, ReducedGradients, UpdateApplier, Checkpointing, ModelBuilder, Evaluation, ModelSharding, StepPlanning, Leadership,
} from './train/strategies/strategy.js';
export { LoopDrivenStrategy } from './train/loop/loop_driven.js';
export { DelegatingStrategy } from './train/strategies/delegating.js';
export type { PipelineScheduleName } from './parallel/pipeline/schedule.js';
export type { StageSplit } from './train/run/memory_estimate.js';
export type { StepOutcome, StepWork } from './train/loop/step.js';
export type { AnyBatch } from './train/loop/objective.js';
export type { BucketSizes } from './train/exchange/buckets.js';
export type { PsRecovery } from './train/strategies/ps_common.js';
export { LocalStrategy } from './train/strategies/local.js';
export { AllReduceStrategy, DivergenceError, COMPRESSIONS, type Compression, type AllReduceStrategyOptions } from './train/strategies/allreduce.js';
export { createParamServerStrategy, ParamServer, ParamServerWorker, type ParamServerOptions, type PsReply } from './train/strategies/param_server.js';
export { createAsyncPsStrategy, AsyncPsServer, AsyncPsWorker, type AsyncPsOptions } from './train/strategies/async_ps.js';
export { DiLoCoStrategy, type DiLoCoOptions } from './train/strategies/diloco.js';
export { createLocalSgdStrategy } from './train/strategies/local_sgd.js';
export {
  createClusterStrategy, CLUSTER_STRATEGIES, DEFAULT_INNER_STEPS, type ClusterStrategyName, type ClusterStrategyOptions,
} from './train/strategies/registry.js';

// Run guards: monitors that detect faults, and faults injected on purpose.
export {
  RunMonitors, MonitorLog, MonitorError, MONITOR_DEFAULTS, type MonitorOptions, type Detection, type Rule, type Severity, type Injection,
} from './train/loop/monitors.js';
export type { OutlierOptions } from './train/loop/grad_outlier.js';
export { FaultInjector, parseFault, parseFaults, FAULT_ENV, type FaultSpec, type FaultKind, type Corruption } from './train/loop/faults.js';

// Configuration files (SmolCluster's cluster_config.yaml / nn_config.yaml).
export { loadClusterConfig, loadNnConfig, loadConfigFile, type LoadedConfig } from './config/load.js';
export type { ClusterConfig, NnConfig } from './config/schema.js';

// Reading what runs leave behind, validation and baselines.
export { buildRunFile, readRunFile, type RunFile, type RunStep, type RankStep, type RankTotalsRun } from './validate/run_file.js';
export {
  compareRuns, formatValidation, type ValidationReport, type CompareOptions, type RunSummary, type StepComparison,
} from './validate/compare.js';
export {
  compareToBaseline, makeBaseline, loadBaseline, saveBaseline, type Baseline, type BaselineComparison, type MetricComparison, type MetricDef, type RunSample,
  type Thresholds, type ThresholdName, type Direction,
} from './validate/baseline.js';
export { type Spread, spreadOf, noisePct } from './validate/noise.js';
export {
  runFaultTest, formatFaultTest, SCENARIOS as FAULT_SCENARIOS, type FaultTestReport, type FaultTestSettings, type FaultTestOptions, type Scenario,
  type ScenarioResult, type ScenarioParams, type LossDivergence,
} from './validate/fault_test.js';
export { InputError } from './validate/files.js';
export {
  loadRun, readMetrics, readEvents, readConfig, readResult, ExperimentFileError,
  type Run, type RunConfig, type MetricsData, type StepLine, type EvalLine,
} from './metrics/reader.js';
export {
  EventLog, appendEvent, eventsFile, EVENTS_SCHEMA, EVENTS_SCHEMA_VERSION, type EventRecord, type EventFields, type EventKind, type NodeSummary,
} from './metrics/events.js';
export { TraceObserver, finalizeTrace, stepSpans, type TraceEvent } from './metrics/trace.js';
export { startDashboard, type Dashboard, type DashboardOptions } from './dashboard/server.js';

// Errors every layer throws (each names the file, field, peer or rank it is about), and the seeded RNG.
export { SmolError, ConfigError, PeerError, TimeoutError, ProtocolError } from './util/errors.js';
export { Rng, type RngState } from './util/rng.js';
