/**
 * One process of a cluster, assembled: where it stands (rank, world, master), its engine and
 * threads, the cluster it joins (worker_cluster.ts), and the training run over it with its
 * monitors, metric stream, dashboard and load balancer. `smolcluster worker` and `server` parse
 * their flags and call runWorkerProcess; an --elastic worker runs elastic_worker.ts instead.
 */
import os from 'node:os';
import { basename } from 'node:path';
import { balancerFromFlags, rebalanceLine } from '../balance/index.js';
import { RunOverError } from '../comm/elastic.js';
import { appendEvent, eventsFile } from '../metrics/events.js';
import { fanOut } from '../metrics/fanout.js';
import { ProgressObserver } from '../metrics/progress_observer.js';
import { startMetricStream } from '../metrics/remote/stream.js';
import { openWandb } from '../metrics/wandb.js';
import { backend, setBackend } from '../tensor/dispatch.js';
import { type ExperimentPaths, experimentName, experimentPaths } from '../train/experiment.js';
import { parseFaults } from '../train/faults.js';
import { MonitorLog } from '../train/monitors.js';
import { runTraining } from '../train/run.js';
import { psRecoverable } from '../train/strategies/ps_common.js';
import { createClusterStrategy } from '../train/strategies/registry.js';
import { chooseThreads } from '../train/threads.js';
import { isCommFailure } from '../util/errors.js';
import { runElasticWorker } from './elastic_worker.js';
import { type Placement, type PlacementFlags, describePlacement, localRankFromEnvironment, resolvePlacementWithSources, schedulerThreads } from './env.js';
import { joinSummary, nodeInfo } from './node_info.js';
import { answerLivenessProbes } from './liveness.js';
import { type JoinedCluster, joinCluster } from './worker_cluster.js';
import { type WorkerDashboardFlags, openWorkerDashboard } from './worker_dashboard.js';
import { type TrainFlags, type WorkerOutcome, checkpointOptions, clusterSignature, configFrom, strategyOptions, tensorBackend } from './worker_flags.js';

export type { WorkerOutcome };

/** A worker's (or server's) flags: the training flags, where it stands, and rank 0's dashboard. */
export interface WorkerFlags extends TrainFlags, WorkerDashboardFlags, PlacementFlags {
  /** The server binds the rendezvous store and its data listener here (cluster_config host_ip, e.g. 0.0.0.0). */
  bindHost?: string;
}

/**
 * Runs this process's part of the cluster's training to its end. `onResult` hears the result as
 * soon as training ends, before the cluster is torn down (which may wait on peers), so the summary
 * is on the screen by then.
 */
export async function runWorkerProcess(flags: WorkerFlags, onResult: (o: WorkerOutcome) => void = () => {}): Promise<WorkerOutcome> {
  answerLivenessProbes(); // a launcher that restarts this process pings it (launch/liveness.ts)
  const { placement: place, sources } = resolvePlacementWithSources(flags);
  const strategyName = flags.strategy ?? 'allreduce';
  const tensor = tensorBackend(flags.backend);
  if (tensor) setBackend(tensor);
  const threads = settleThreads(flags, describePlacement(place, sources));
  const config = configFrom(flags, threads);
  const faults = parseFaults(flags.fault);
  const timeoutMs = flags.timeout * 1000;
  const signature = clusterSignature(config, flags);
  if (flags.elastic) return runElasticWorker(flags, place, config, signature, faults, onResult);
  let experiment: ExperimentPaths | undefined;
  const joined = await joinCluster({
    flags, place, signature, timeoutMs, recoverable: psRecoverable(strategyName, { ...flags, gradAccum: config.gradAccum }),
    rejoined: (rank, version) => appendEvent(experiment!.dir, 'worker_rejoined', { rank, version }),
  });
  experiment = experimentPaths(flags.experimentsDir, flags.name ?? experimentName(config.model));
  if (joined === 'over') {
    process.stderr.write(`smolcluster: worker ${place.rank}: the run is over; nothing to rejoin\n`);
    return { result: null, dir: experiment.dir };
  }
  return trainOnCluster(flags, place, joined, experiment, { config, faults, timeoutMs, onResult });
}

/** The thread count (flag, environment, scheduler, calibration), set on the engine and said on stderr. */
function settleThreads(flags: WorkerFlags, placement: string): number {
  const scheduled = flags.threads === undefined && !process.env.SMOLCLUSTER_THREADS ? schedulerThreads(os.availableParallelism()) : undefined;
  const chosen = chooseThreads(flags.threads ?? scheduled?.threads);
  const threads = chosen.threads;
  const local = localRankFromEnvironment();
  process.stderr.write(`smolcluster: ${placement}${local !== undefined ? `, local rank ${local}` : ''}, ${threads} thread${threads === 1 ? '' : 's'} (${scheduled?.source ?? chosen.source})\n`);
  backend().setThreads(threads);
  return threads;
}

interface RunParts {
  config: ReturnType<typeof configFrom>;
  faults: ReturnType<typeof parseFaults>;
  timeoutMs: number;
  onResult(o: WorkerOutcome): void;
}

/** The training run over a joined cluster, with its monitors, metric stream, dashboard and balancer; leaves the cluster at the end. */
async function trainOnCluster(flags: WorkerFlags, place: Placement, joined: JoinedCluster, experiment: ExperimentPaths, { config, faults, timeoutMs, onResult }: RunParts): Promise<WorkerOutcome> {
  const { cluster, recovery } = joined;
  const strategyName = flags.strategy ?? 'allreduce';
  // A crashed peer is the root cause of whatever fails next. A rank that was waiting on a third
  // rank (which leaves as soon as it notices the crash) would otherwise blame that third rank.
  let lost: Error | null = null;
  cluster.transport.on('peerLost', (_peer: number, err: Error) => {
    if (!recovery) lost ??= err; // with ps recovery a lost peer may come back: not a root cause yet
  });
  // The run's monitors report here; so does this catch, for the failures they cannot see (monitors.ts).
  const events = new MonitorLog(eventsFile(experiment.dir), place.rank);
  // Every rank's lines reach rank 0's folder, where its dashboard reads them (src/metrics/remote).
  const stream = startMetricStream({ transport: cluster.transport, rank: place.rank, dir: experiment.dir, timeoutMs: Math.min(timeoutMs, 10_000) });
  let failed = false;
  let dashboard: { close(): Promise<void> } | null = null;
  try {
    dashboard = await openWorkerDashboard(flags, place.rank, experiment.dir, basename(experiment.dir), flags.resume !== undefined);
    const strategy = createClusterStrategy(strategyName, cluster.group, { ...strategyOptions(flags), recovery });
    const balance = balancerFromFlags(flags, strategyName, cluster.group, strategy.dataShard ?? { index: place.rank, count: place.worldSize, compute: true }, (e) => {
      appendEvent(experiment.dir, 'rebalance', e);
      process.stderr.write(`smolcluster: ${rebalanceLine(e)}\n`);
    });
    // The ranks that train: a parameter server that only aggregates is not one of them.
    const trainers = strategy.dataShard?.count ?? place.worldSize;
    // W&B logs rank 0's measurements; it must be open before training starts.
    const wandb = flags.wandb && place.rank === 0
      ? await openWandb({ project: flags.wandbProject, name: basename(experiment.dir), config, worldSize: trainers })
      : null;
    const progress = new ProgressObserver(trainers, strategy.dataShard?.compute === false ? 'server' : 'train');
    try {
      const result = await runTraining({
        config, strategy, experiment, observer: fanOut(progress, ...(wandb ? [wandb] : []), ...(stream.observer ? [stream.observer] : [])), output: flags.output, save: flags.save, events, faults,
        trace: flags.trace, balance: balance ?? undefined, node: joinSummary(nodeInfo(backend().description)), checkpoints: checkpointOptions(flags, experiment.dir, place.rank),
        beforeEnd: () => stream.settle(),
      });
      onResult({ result, dir: experiment.dir });
      return { result, dir: experiment.dir };
    } finally {
      await wandb?.finish();
    }
  } catch (err) {
    if (err instanceof RunOverError) {
      process.stderr.write(`smolcluster: worker ${place.rank}: ${err.message}\n`);
      return { result: null, dir: experiment.dir };
    }
    failed = true;
    if (!isCommFailure(err)) {
      events.failure(err);
      throw err;
    }
    // The crash and the third rank's goodbye may be read in either order: give the first a moment.
    if (!lost) await new Promise((resolve) => setTimeout(resolve, 100));
    events.failure(lost ?? err);
    throw lost ?? err;
  } finally {
    events.close();
    await stream.close(failed);
    await dashboard?.close();
    await joined.leave();
  }
}
