/**
 * One process of a cluster, assembled: where it stands (rank, world, master), its engine and
 * threads, the cluster it joins (worker_cluster.ts), and the training run over it with its
 * monitors, metric stream, dashboard and load balancer. `smolcluster worker` and `server` parse
 * their flags and call runWorkerProcess; an --elastic worker runs elastic_worker.ts instead.
 */
import os from 'node:os';
import { resolveDevice } from '../train/engine/device.js';
import { basename } from 'node:path';
import { balancerFromFlags, rebalanceLine } from '../balance/index.js';
import { RunOverError } from '../comm/elastic.js';
import { appendEvent, eventsFile } from '../metrics/events.js';
import { fanOut } from '../metrics/fanout.js';
import { ProgressObserver } from '../metrics/progress_observer.js';
import { startMetricStream } from '../metrics/remote/stream.js';
import { openWandb } from '../metrics/wandb.js';
import { backend, setBackend } from '../tensor/dispatch.js';
import { type ExperimentPaths, claimNamedRun, experimentName, experimentPaths } from '../train/run/experiment.js';
import { parseFaults } from '../train/loop/faults.js';
import { MonitorLog } from '../train/loop/monitors.js';
import { runTraining } from '../train/run/run.js';
import { psRecoverable } from '../train/strategies/ps_common.js';
import { createClusterStrategy } from '../train/strategies/registry.js';
import { chooseThreads } from '../train/engine/threads.js';
import { ConfigError, isCommFailure } from '../util/errors.js';
import { runElasticWorker } from './elastic_worker.js';
import { type Placement, type PlacementFlags, describePlacement, localRankFromEnvironment, renameFlagSources, resolvePlacementWithSources, schedulerThreads } from './env.js';
import { fitThreadsToHost } from '../train/engine/host_threads.js';
import { checkRunInputs } from './preflight.js';
import { agreeRunName } from '../train/run/run_name.js';
import { agreePrecision } from '../train/engine/precision_agreement.js';
import { joinSummary, nodeInfo } from './node_info.js';
import { answerLivenessProbes } from './liveness.js';
import { type JoinedCluster, joinCluster } from './worker_cluster.js';
import { type WorkerDashboardFlags, openWorkerDashboard } from './worker_dashboard.js';
import { type AdvertiseFlags, checkDiscoveryFlags } from './discovery/advertise.js';
import { type DiscoverFlags, type Discovered, discoverAndClaim } from './discovery/join.js';
import { LAUNCHER_STORE_ENV, type TrainFlags, type WorkerOutcome, checkpointOptions, clusterSignature, configFrom, strategyOptions, tensorBackend } from './worker_flags.js';
import { readInitGguf } from '../train/run/init_source.js';

export type { WorkerOutcome };

/** A worker's (or server's) flags: the training flags, where it stands, and rank 0's dashboard. */
export interface WorkerFlags extends TrainFlags, WorkerDashboardFlags, PlacementFlags, AdvertiseFlags, DiscoverFlags {
  /** The server binds the rendezvous store and its data listener here (cluster_config host_ip, e.g. 0.0.0.0). */
  bindHost?: string;
  /** `server` made --master up from --master-port (no worker_connect_ip): rank 0 then names this host's addresses. */
  masterDerived?: boolean;
  /** Where --rank, --world-size and --master came from when not typed (a cluster file, `server`): its start line says so. */
  placementFrom?: { rank?: string; worldSize?: string; master?: string };
}

/**
 * Runs this process's part of the cluster's training to its end. `onResult` hears the result as
 * soon as training ends, before the cluster is torn down (which may wait on peers), so the summary
 * is on the screen by then.
 */
export async function runWorkerProcess(flags: WorkerFlags, onResult: (o: WorkerOutcome) => void = () => {}): Promise<WorkerOutcome> {
  const startedAt = Date.now();
  answerLivenessProbes(); // a launcher that restarts this process pings it (launch/liveness.ts)
  checkDiscoveryFlags(flags);
  if (flags.elastic && flags.advertise) throw new ConfigError('command line', '--advertise', 'an elastic run\'s store is `smolcluster store`: advertise it there (`smolcluster store --advertise`)');
  if (!flags.discover) return runPlaced(flags, null, startedAt, onResult);
  // --discover: the master from DNS-SD, the rank from its store; that store connection then serves the rendezvous.
  const discovered = await discoverAndClaim(flags, (line) => process.stderr.write(`smolcluster: ${line}\n`));
  const { cluster } = discovered;
  const placed: WorkerFlags = {
    ...flags, rank: discovered.rank, worldSize: cluster.worldSize, master: `${cluster.host}:${cluster.port}`,
    placementFrom: { rank: 'the store', worldSize: 'DNS-SD', master: `DNS-SD, cluster ${cluster.clusterName}` },
  };
  return runPlaced(placed, discovered, startedAt, onResult).catch((err: unknown) => {
    discovered.store.close(); // no-op once the rendezvous has taken it over and closed it
    throw err;
  });
}

/** The process, once it knows where it stands (`discovered`: its rank came from a store found by DNS-SD). */
async function runPlaced(flags: WorkerFlags, discovered: Discovered | null, startedAt: number, onResult: (o: WorkerOutcome) => void): Promise<WorkerOutcome> {
  const resolved = resolvePlacementWithSources(flags);
  const place = resolved.placement;
  const sources = renameFlagSources(resolved.sources, flags.placementFrom ?? {});
  const strategyName = flags.strategy ?? 'allreduce';
  const tensor = tensorBackend(flags.backend);
  if (tensor) setBackend(tensor);
  const chosenDevice = await resolveDevice(flags.device);
  if (chosenDevice.note) process.stderr.write(`smolcluster: ${chosenDevice.note}\n`);
  const { threads, chosenAlone } = settleThreads(flags, describePlacement(place, sources));
  // An --init GGUF file's header, read once: its spec and tokenizer are asked for synchronously later.
  await readInitGguf(flags.init);
  const config = configFrom(flags, threads);
  config.device = chosenDevice.device;
  checkRunInputs(config);
  // Started by hand, rank 0 owns the run's name; under a launcher the launcher checked it. (An
  // elastic run has no owner: its members write the folder as each joins, rank 0 perhaps last.)
  if (place.rank === 0 && flags.name !== undefined && !flags.elastic && process.env[LAUNCHER_STORE_ENV] !== '1') claimNamedRun(experimentPaths(flags.experimentsDir, flags.name).dir, flags);
  const faults = parseFaults(flags.fault);
  const timeoutMs = flags.timeout * 1000;
  const signature = clusterSignature(config, flags);
  if (flags.elastic) return runElasticWorker(flags, place, config, signature, faults, onResult, discovered?.store);
  let experiment: ExperimentPaths | undefined;
  const recoverable = psRecoverable(strategyName, { ...flags, gradAccum: config.gradAccum });
  const joined = await joinCluster({
    flags, place, signature, timeoutMs, recoverable, claimedStore: discovered?.store,
    advertise: { flags, model: config.model, strategy: strategyName },
    rejoined: (rank, version) => appendEvent(experiment!.dir, 'worker_rejoined', { rank, version }),
  });
  if (joined === 'over') {
    experiment = experimentPaths(flags.experimentsDir, flags.name ?? experimentName(config.model, undefined, flags.experimentsDir));
    process.stderr.write(`smolcluster: worker ${place.rank}: the run is over; nothing to rejoin\n`);
    return { result: null, dir: experiment.dir };
  }
  const name = await agreeOnRun(joined, place, config, flags, { timeoutMs, fitThreads: chosenAlone && !joined.restarted }).catch(async (err: unknown) => {
    await joined.leave();
    throw err;
  });
  experiment = experimentPaths(flags.experimentsDir, name);
  // Dawn keeps a process alive while its device is open.
  return trainOnCluster(flags, place, joined, experiment, { config, faults, timeoutMs, onResult, startedAt }).finally(() => chosenDevice.release());
}

/**
 * After the rendezvous: the run's name (rank 0's, through the store, so hand-started workers write
 * into rank 0's folder), for threads this rank chose alone its host's share of the cores, and
 * --precision auto's choice (rank 0's, precision_agreement.ts).
 */
async function agreeOnRun(joined: JoinedCluster, place: Placement, config: ReturnType<typeof configFrom>, flags: WorkerFlags, o: { timeoutMs: number; fitThreads: boolean }): Promise<string> {
  const store = joined.cluster.store;
  const name = await agreeRunName({ rank: place.rank, name: flags.name, drawn: () => experimentName(config.model, undefined, flags.experimentsDir), store, timeoutMs: o.timeoutMs });
  if (o.fitThreads) {
    const fitted = await fitThreadsToHost({ store, rank: place.rank, size: place.worldSize, timeoutMs: o.timeoutMs });
    if (fitted) process.stderr.write(`smolcluster: rank ${place.rank}: ${fitted}\n`);
    config.threads = backend().getThreads();
  }
  // After the threads: auto measures with the ones this run computes with.
  await agreePrecision({ rank: place.rank, worldSize: place.worldSize, config, store, timeoutMs: o.timeoutMs });
  return name;
}

/** The thread count (flag, environment, scheduler, calibration), set on the engine and said on stderr; `chosenAlone`: nothing outside this rank set it. */
function settleThreads(flags: WorkerFlags, placement: string): { threads: number; chosenAlone: boolean } {
  const scheduled = flags.threads === undefined && !process.env.SMOLCLUSTER_THREADS ? schedulerThreads(os.availableParallelism()) : undefined;
  const chosen = chooseThreads(flags.threads ?? scheduled?.threads);
  const threads = chosen.threads;
  const local = localRankFromEnvironment();
  process.stderr.write(`smolcluster: ${placement}${local !== undefined ? `, local rank ${local}` : ''}, ${threads} thread${threads === 1 ? '' : 's'} (${scheduled?.source ?? chosen.source})\n`);
  backend().setThreads(threads);
  return { threads, chosenAlone: !scheduled && flags.threads === undefined && !process.env.SMOLCLUSTER_THREADS };
}

interface RunParts {
  config: ReturnType<typeof configFrom>;
  faults: ReturnType<typeof parseFaults>;
  timeoutMs: number;
  onResult(o: WorkerOutcome): void;
  startedAt: number;
}

/** The training run over a joined cluster, with its monitors, metric stream, dashboard and balancer; leaves the cluster at the end. */
async function trainOnCluster(flags: WorkerFlags, place: Placement, joined: JoinedCluster, experiment: ExperimentPaths, { config, faults, timeoutMs, onResult, startedAt }: RunParts): Promise<WorkerOutcome> {
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
  let dashboard: { url: string; close(): Promise<void> } | null = null;
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
        config, strategy, experiment, observer: fanOut(progress, ...(wandb ? [wandb] : []), ...(stream.observer ? [stream.observer] : [])), output: flags.output, save: flags.save, saveDtype: flags.saveDtype, saveQuantize: flags.saveQuantize, saveShardSize: flags.saveShardSize, events, faults,
        trace: flags.trace, balance: balance ?? undefined, node: joinSummary(nodeInfo(backend().description)), checkpoints: checkpointOptions(flags, experiment.dir, place.rank),
        beforeEnd: () => stream.settle(),
      });
      onResult({ result, dir: experiment.dir });
      if (!result && process.env[LAUNCHER_STORE_ENV] !== '1') process.stderr.write(`smolcluster: ${finishedLine(place.rank, (Date.now() - startedAt) / 1000, backend().getThreads(), experiment.dir)}\n`);
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
    await joined.leave();
    // Last: a finished run's page may stay up in a terminal (live.ts endLiveDashboard).
    if (dashboard && !failed) await (await import('../dashboard/live.js')).endLiveDashboard(dashboard, experiment.dir);
    else await dashboard?.close();
  }
}

/** The line a rank other than the leader ends with: it finished, and where the run's results are. */
export function finishedLine(rank: number, seconds: number, threads: number, dir: string): string {
  return `rank ${rank} finished in ${seconds.toFixed(1)} s (${threads} thread${threads === 1 ? '' : 's'}); rank 0 writes the results to ${dir} on its host`;
}
