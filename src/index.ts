/** smolcluster's library API. */
export * from './tensor/index.js';
export * from './nn/index.js';
export * from './data/index.js';
export { train, specFor, type TrainObserver, type StepRecord, type EvalRecord, type TrainOutcome, type TrainData } from './train/loop.js';
export { evaluate, type EvalResult } from './train/evaluate.js';
export { type TrainConfig, defaultConfig } from './train/config.js';
export type { Strategy, StrategyContext, CommTiming } from './train/strategy.js';
export { LocalStrategy } from './train/strategies/local.js';
export { createParamServerStrategy, ParamServer, ParamServerWorker, type ParamServerOptions } from './train/strategies/param_server.js';
export { createAsyncPsStrategy, AsyncPsServer, AsyncPsWorker, type AsyncPsOptions } from './train/strategies/async_ps.js';
export { loadClusterConfig, loadNnConfig, loadConfigFile } from './config/load.js';
export type { ClusterConfig, NnConfig } from './config/schema.js';
export { buildResult, type TrainResult } from './train/result.js';
export { Rng } from './util/rng.js';
export { loadTrainData, SYNTHETIC_REGRESSION } from './train/run.js';
export { RunMonitors, MonitorLog, MonitorError, MONITOR_DEFAULTS, type MonitorOptions, type Detection, type Rule } from './train/monitors.js';
export { FaultInjector, parseFault, parseFaults, FAULT_ENV, type FaultSpec } from './train/faults.js';
export { buildRunFile, readRunFile, type RunFile, type RunStep } from './validate/run_file.js';
export { compareRuns, formatValidation, type ValidationReport } from './validate/compare.js';
export { compareToBaseline, makeBaseline, loadBaseline, saveBaseline, type Baseline, type BaselineComparison } from './validate/baseline.js';
export { runFaultTest, formatFaultTest, SCENARIOS as FAULT_SCENARIOS, type FaultTestReport } from './validate/fault_test.js';
export { InputError } from './validate/files.js';
export {
  loadRun, readMetrics, readEvents, readConfig, readResult, ExperimentFileError,
  type Run, type RunConfig, type MetricsData, type StepLine, type EvalLine,
} from './metrics/reader.js';
export { EventLog, appendEvent, eventsFile, EVENTS_SCHEMA_VERSION, type EventRecord, type EventFields, type EventKind } from './metrics/events.js';
export { TraceObserver, finalizeTrace, stepSpans, type TraceEvent } from './metrics/trace.js';
export { startDashboard, type Dashboard, type DashboardOptions } from './dashboard/server.js';
export type { StepMarks } from './train/loop.js';
