/**
 * Watching the evaluation loss, as the Hugging Face Trainer does with metric_for_best_model=eval_loss:
 * the best loss so far (kept as the best model, --save-best) and, with --early-stopping-patience N,
 * the end of the run once N evaluations in a row have not improved on it (its
 * EarlyStoppingCallback). An evaluation is better when its loss is lower than the best; it resets
 * the patience only when it is lower by more than the threshold (early_stopping_threshold), so a
 * run that creeps down by less still stops, while its best model is still kept.
 */
import type { EvalResult } from '../../metrics/records.js';
import type { ModelSpec } from '../../nn/models/index.js';
import type { Module } from '../../nn/module.js';
import { SmolError } from '../../util/errors.js';
import type { TrainConfig } from '../run/config.js';
import { type Strategy, type StrategyContext, isLeader } from '../strategies/strategy.js';

/** What one evaluation means for the run: a new best loss, and whether the run ends here. */
export interface EvalVerdict {
  improved: boolean;
  stop: boolean;
}

/** What a checkpoint keeps of the watch, so a resumed run goes on counting (checkpoints.ts LoopState.evaluations). */
export interface WatchState {
  bestLoss: number;
  bestStep: number;
  /** Evaluations since the last one that reset the patience. */
  waited: number;
}

export class EvalWatch {
  private s: WatchState = { bestLoss: Infinity, bestStep: -1, waited: 0 };

  /** `patience` undefined: only the best loss is tracked (--save-best without early stopping). */
  constructor(readonly patience: number | undefined, readonly threshold = 0) {
    if (patience !== undefined && !(Number.isInteger(patience) && patience > 0)) throw new RangeError(`--early-stopping-patience must be a positive integer, got ${patience}`);
    if (!(threshold >= 0)) throw new RangeError(`--early-stopping-threshold must be a non-negative number, got ${threshold}`);
  }

  /** The evaluation after `step` steps had this loss (NaN never improves). */
  observe(step: number, loss: number): EvalVerdict {
    const first = this.s.bestStep < 0;
    const improved = loss < this.s.bestLoss;
    const enough = improved && (first || this.s.bestLoss - loss > this.threshold);
    if (improved) {
      this.s.bestLoss = loss;
      this.s.bestStep = step;
    }
    this.s.waited = enough ? 0 : this.s.waited + 1;
    return { improved, stop: this.patience !== undefined && this.s.waited >= this.patience };
  }

  get best(): { step: number; loss: number } | null {
    return this.s.bestStep < 0 ? null : { step: this.s.bestStep, loss: this.s.bestLoss };
  }

  get waited(): number {
    return this.s.waited;
  }

  state(): WatchState {
    // JSON writes Infinity as null: restore reads a watch with no best step as having no loss.
    return { ...this.s };
  }

  restore(saved: WatchState | undefined): void {
    if (!saved) return;
    const ok = Number.isInteger(saved.bestStep) && Number.isInteger(saved.waited) && saved.waited >= 0 && (saved.bestStep < 0 || typeof saved.bestLoss === 'number');
    if (!ok) throw new Error(`checkpoint: its evaluation watch ${JSON.stringify(saved).slice(0, 120)} is not a best step, loss and count`);
    this.s = { bestLoss: saved.bestStep < 0 ? Infinity : saved.bestLoss, bestStep: saved.bestStep, waited: saved.waited };
  }
}

/**
 * How the leader's verdict reaches every rank (only the leader evaluates). Where `gather` is an
 * all-gather every rank joins, each rank sends its flags and acts on any rank's: the leader's.
 * Under ps the workers are told by the server: its next reply carries the end of the run, so the
 * server takes one more step (the one the workers are computing) and stops with them. async-ps
 * and elastic runs are refused: their ranks step on their own or change members, and no rank can
 * wait for the leader's word at a step every rank takes.
 */
export type VerdictRoute = { kind: 'gather' } | { kind: 'server' } | { kind: 'refused'; why: string };

export function verdictRoute(strategyName: string): VerdictRoute {
  if (strategyName === 'ps') return { kind: 'server' };
  if (strategyName === 'async-ps') return { kind: 'refused', why: 'its workers step on their own, with no step at which all of them hear the server' };
  if (strategyName === 'elastic-allreduce') return { kind: 'refused', why: 'its members may change between two evaluations' };
  return { kind: 'gather' };
}

/** The verdict every rank acts on (the leader's, or none where this rank has none to act on). */
export async function shareVerdict(
  route: VerdictRoute, gather: (local: Float32Array) => Promise<Float32Array>, ctx: StrategyContext, step: number, mine: EvalVerdict | null,
): Promise<EvalVerdict | null> {
  if (route.kind === 'server') {
    // The server's next update answers the workers with the end of the run (param_server.ts `finished`).
    if (mine?.stop) ctx.totalSteps = step + 1;
    return mine && { improved: mine.improved, stop: false };
  }
  const all = await gather(Float32Array.of(mine?.improved ? 1 : 0, mine?.stop ? 1 : 0));
  let improved = false;
  let stop = false;
  for (let i = 0; i < all.length; i += 2) {
    improved ||= all[i] === 1;
    stop ||= all[i + 1] === 1;
  }
  return { improved, stop };
}

/** Keeps the model of a new best evaluation loss (called on the leader, with the whole model). */
export interface BestKeeper {
  keep(model: Module, spec: ModelSpec, step: number, loss: number): Promise<void>;
}

/**
 * The evaluation watch a run asks for (--save-best, --early-stopping-patience), or null. Early
 * stopping is refused where no rank can wait for the leader's verdict (early_stopping.ts verdictRoute).
 */
export function watchFor(config: TrainConfig, strategyName: string): EvalWatch | null {
  if (config.earlyStoppingThreshold !== undefined && config.earlyStoppingPatience === undefined) throw new SmolError('BAD_FLAGS', '--early-stopping-threshold needs --early-stopping-patience (what the threshold counts toward)');
  if (config.earlyStoppingPatience === undefined && !config.saveBest) return null;
  const route = verdictRoute(strategyName);
  if (route.kind === 'refused') throw new SmolError('BAD_FLAGS', `--early-stopping-patience / --save-best: the ${strategyName} strategy cannot act on the leader's evaluations (${route.why}); use allreduce or ps`);
  return new EvalWatch(config.earlyStoppingPatience, config.earlyStoppingThreshold ?? 0);
}

/** What acting on an evaluation needs: the run, its watch, and where a new best goes. */
export interface Watched {
  ctx: StrategyContext;
  strategy: Strategy;
  spec: ModelSpec;
  keeper?: BestKeeper;
  watch: EvalWatch;
}

/**
 * After an evaluation of a watched run, on every rank: the leader's verdict shared (early_stopping.ts
 * shareVerdict), and a new best handed to the keeper while the model is whole. `e` is the
 * leader's evaluation (null elsewhere). The final evaluation may be the best, but ends nothing.
 */
export async function actOnEvaluation(
  w: Watched, step: number, e: EvalResult | null, final: boolean, outcome: { stoppedEarly?: { step: number; patience: number } },
): Promise<EvalVerdict | null> {
  const mine = e ? w.watch.observe(step, e.loss) : null;
  const verdict = await shareVerdict(verdictRoute(w.strategy.name), (v) => w.strategy.gather(v), w.ctx, step, final && mine ? { ...mine, stop: false } : mine);
  if (verdict?.improved) await keepBest(w, final);
  if (mine?.stop && !final) outcome.stoppedEarly = { step, patience: w.watch.patience! };
  return verdict;
}

/**
 * Hands the model of a new best evaluation to the keeper (every rank has one, or none does: each
 * takes part in the gathering below). Where each rank holds a part of the model (pipeline stages,
 * tensor-parallel shards) every rank takes part in making it whole on the leader
 * (ModelBuilder.savedModel): every rank knows of the new best from the shared verdict. A ZeRO-3
 * model, which evaluates sharded, is gathered on the leader and sharded again (at the end of the
 * run it is whole already). Elsewhere the leader's model is whole.
 */
async function keepBest({ ctx, strategy, spec, keeper, watch }: Watched, final: boolean): Promise<void> {
  if (!keeper) return;
  const builder = strategy.modelBuilder;
  const gathered = !final && strategy.evaluation !== undefined ? strategy.sharding : undefined;
  await gathered?.wholeModel(ctx);
  const whole = builder?.savedModel ? await builder.savedModel(ctx.model, spec) : isLeader(strategy) ? ctx.model : null;
  const best = watch.best;
  if (whole && best && isLeader(strategy)) await keeper.keep(whole, spec, best.step, best.loss);
  gathered?.shardModel(ctx);
}
