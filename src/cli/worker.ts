import { Command } from 'commander';
import { rendezvous } from '../comm/rendezvous.js';
import { RunOverError } from '../comm/elastic.js';
import { basename } from 'node:path';
import { fanOut } from '../metrics/fanout.js';
import { ProgressObserver } from '../metrics/progress_observer.js';
import { openWandb } from '../metrics/wandb.js';
import { isCommFailure } from '../util/errors.js';
import { backend, setBackend } from '../tensor/dispatch.js';
import os from 'node:os';
import { joinSummary, nodeInfo } from '../launch/node_info.js';
import { describePlacement, localRankFromEnvironment, renameFlagSources, resolvePlacementWithSources, schedulerThreads } from '../launch/env.js';
import { experimentName, experimentPaths, claimNamedRun } from '../train/experiment.js';
import { agreeRunName } from '../launch/run_name.js';
import { fitThreadsToHost } from '../launch/host_threads.js';
import { listenWarning } from '../launch/listen.js';
import { checkRunInputs } from '../launch/preflight.js';
import { parseFaults } from '../train/faults.js';
import { appendEvent, eventsFile } from '../metrics/events.js';
import { balancerFromFlags, rebalanceLine } from '../balance/index.js';
import { MonitorLog } from '../train/monitors.js';
import { runTraining } from '../train/run.js';
import { createClusterStrategy } from '../train/strategies/ps_factory.js';
import { LAUNCHER_STORE_ENV, clusterSignature, strategyOptions } from '../launch/worker_flags.js';
import { StoreServer } from '../comm/store/server.js';
import { resolveToken } from '../comm/token.js';
import { chooseInterface, isLoopbackHost } from '../launch/iface.js';
import { addConfigFlags, placementFromFile } from './config.js';
import { chooseThreads } from '../train/threads.js';
import { nonNegativeInt, positiveInt } from './options.js';
import { printSummary } from './train.js';
import { loopbackFor } from './ps_recovery.js';
import { runElasticWorker } from './elastic_worker.js';
import { withAskedRank } from './ask_rank.js';
import { answerLivenessProbes } from '../launch/liveness.js';
import { type PsPlace, joinRunningPs, psRecovery, restartedProcess } from './ps_recovery.js';
import { psRecoverable } from '../train/strategies/ps_common.js';
import { type TrainFlags, addSinkFlags, addTrainFlags, checkpointOptions, configFrom, tensorBackend } from './train_flags.js';
import { startMetricStream } from '../metrics/remote/stream.js';
import { type WorkerDashboardFlags, addWorkerDashboardFlags, openWorkerDashboard } from './worker_dashboard.js';

export interface WorkerFlags extends TrainFlags, WorkerDashboardFlags {
  rank?: number;
  worldSize?: number;
  master?: string;
  /** The server binds the rendezvous store and its data listener here (cluster_config host_ip, e.g. 0.0.0.0). */
  bindHost?: string;
  /** `server` made --master up from --master-port (no worker_connect_ip): rank 0 then names this host's addresses. */
  masterDerived?: boolean;
  /** Where --rank, --world-size and --master came from when not typed (a cluster file, `server`): its start line says so. */
  placementFrom?: { rank?: string; worldSize?: string; master?: string };
}

export function workerCommand(): Command {
  const cmd = new Command('worker').description('one process of a cluster (--strategy allreduce, ps or async-ps); rank 0 hosts the rendezvous store');
  return addWorkerDashboardFlags(addConfigFlags(addSinkFlags(addTrainFlags(cmd))))
    .option('--rank <n>', 'this process\'s rank (env RANK, SLURM_PROCID, OMPI_COMM_WORLD_RANK; or this host\'s place in the cluster config\'s host lists)', nonNegativeInt)
    .option('--world-size <n>', 'number of processes (env WORLD_SIZE, SLURM_NTASKS, OMPI_COMM_WORLD_SIZE)', positiveInt)
    .option('--master <host:port>', 'rendezvous address (env MASTER_ADDR, MASTER_PORT)')
    .action(async (flags: WorkerFlags, cmd: Command) => runWorker({ ...flags, placementFrom: placementFromFile(cmd) }));
}

export async function runWorker(flags: WorkerFlags): Promise<void> {
  const startedAt = Date.now();
  answerLivenessProbes(); // a launcher that restarts this process pings it (launch/liveness.ts)
  const resolved = resolvePlacementWithSources(await withAskedRank(flags));
  const place = resolved.placement;
  const sources = renameFlagSources(resolved.sources, flags.placementFrom ?? {});
  const strategyName = flags.strategy ?? 'allreduce';
  const sOpts = strategyOptions(flags);
  const tensor = tensorBackend(flags.backend);
  if (tensor) setBackend(tensor);
  const scheduled = flags.threads === undefined && !process.env.SMOLCLUSTER_THREADS ? schedulerThreads(os.availableParallelism()) : undefined;
  const chosen = chooseThreads(flags.threads ?? scheduled?.threads);
  const threads = chosen.threads;
  const local = localRankFromEnvironment();
  process.stderr.write(`smolcluster: ${describePlacement(place, sources)}${local !== undefined ? `, local rank ${local}` : ''}, ${threads} thread${threads === 1 ? '' : 's'} (${scheduled?.source ?? chosen.source})\n`);
  backend().setThreads(threads);
  const config = configFrom(flags, threads);
  checkRunInputs(config);
  // Started by hand, rank 0 owns the run's name; under a launcher the launcher checked it. (An
  // elastic run has no owner: its members write the folder as each joins, rank 0 perhaps last.)
  if (place.rank === 0 && flags.name !== undefined && !flags.elastic && process.env[LAUNCHER_STORE_ENV] !== '1') claimNamedRun(experimentPaths(flags.experimentsDir, flags.name).dir, flags);
  const faults = parseFaults(flags.fault);
  const timeoutMs = flags.timeout * 1000;
  const signature = clusterSignature(config, flags);
  if (flags.elastic) return runElasticWorker(flags, place, config, signature, faults);
  // A server binding host_ip (e.g. 0.0.0.0) hosts the store itself there and dials it on loopback.
  const bind = place.rank === 0 && flags.bindHost && process.env[LAUNCHER_STORE_ENV] !== '1' ? flags.bindHost : undefined;
  const store = bind ? await StoreServer.start({ host: bind, port: place.masterPort, token: resolveToken({}), worldSize: place.worldSize, signature, timeoutMs }) : null;
  const iface = chooseInterface({ requested: flags.iface, masterHost: place.masterHost });
  const advertise = iface?.address ?? (bind && !isLoopbackHost(place.masterHost) ? place.masterHost : undefined);
  const connectHost = bind && !flags.masterDerived ? place.masterHost : undefined;
  if (place.rank === 0) process.stderr.write(`smolcluster: ${masterAnnouncement(bind ?? place.masterHost, place.masterPort, place.worldSize, undefined, connectHost)}\n`);
  const exposed = bind ? listenWarning('rendezvous store', bind, place.masterPort, '--bind-host (cluster_config host_ip)') : null;
  if (exposed) process.stderr.write(`smolcluster: ${exposed}\n`);
  // ps: the server re-admits workers that come back, workers re-dial a restarted server (ps_recovery.ts).
  const recoverable = psRecoverable(strategyName, { ...flags, gradAccum: config.gradAccum });
  const restarted = recoverable && restartedProcess();
  const psPlace: PsPlace = {
    rank: place.rank, worldSize: place.worldSize, masterHost: place.masterHost, masterPort: place.masterPort, token: resolveToken({}), signature, timeoutMs,
    listenHost: iface?.address ?? bind ?? (isLoopbackHost(place.masterHost) ? place.masterHost : '0.0.0.0'), advertiseHost: iface?.address ?? place.masterHost,
    hostStore: !bind && place.rank === 0 && process.env[LAUNCHER_STORE_ENV] !== '1', storeBind: bind,
  };
  const cluster = await (restarted ? joinRunningPs(psPlace) : rendezvous({
    rank: place.rank, worldSize: place.worldSize, masterHost: bind ? loopbackFor(bind) : place.masterHost, masterPort: place.masterPort,
    hostStore: !bind && place.rank === 0 && process.env[LAUNCHER_STORE_ENV] !== '1',
    listenHost: iface?.address ?? bind, advertiseHost: advertise,
    signature, timeoutMs, group: { timeoutMs },
    sharedMemory: !recoverable, // ranks on this host exchange through shared memory (comm/shm/); ps recovery swaps TCP links
    onJoin: place.rank === 0 ? (r, address, joined, total) => process.stderr.write(`smolcluster: rank ${r} joined from ${address} (${joined}/${total})\n`) : undefined,
  })).catch(async (err: unknown) => {
    await store?.close();
    throw err;
  });
  const name = await (async (): Promise<string> => {
    const agreed = await agreeRunName({ rank: place.rank, name: flags.name, drawn: () => experimentName(config.model, undefined, flags.experimentsDir), store: cluster.store, timeoutMs });
    // Threads chosen alone (no --threads, SMOLCLUSTER_THREADS or scheduler) are cut to this host's share.
    if (!scheduled && flags.threads === undefined && !process.env.SMOLCLUSTER_THREADS && !restarted) {
      const fitted = await fitThreadsToHost({ store: cluster.store, rank: place.rank, size: place.worldSize, timeoutMs });
      if (fitted) process.stderr.write(`smolcluster: rank ${place.rank}: ${fitted}\n`);
      config.threads = backend().getThreads();
    }
    return agreed;
  })().catch(async (err: unknown) => {
    await cluster.close();
    await store?.close();
    throw err;
  });
  const experiment = experimentPaths(flags.experimentsDir, name);
  const rejoined = (rank: number, version: number): void => appendEvent(experiment.dir, 'worker_rejoined', { rank, version });
  const ps = recoverable ? await psRecovery(cluster, psPlace, restarted, rejoined).catch(async (err: unknown) => {
    await cluster.close();
    await store?.close();
    if (err instanceof RunOverError) return 'over' as const;
    throw err;
  }) : null;
  if (ps === 'over') return void process.stderr.write(`smolcluster: worker ${place.rank}: the run is over; nothing to rejoin\n`);
  // A crashed peer is the root cause of whatever fails next. A rank that was waiting on a third
  // rank (which leaves as soon as it notices the crash) would otherwise blame that third rank.
  let lost: Error | null = null;
  cluster.transport.on('peerLost', (_peer: number, err: Error) => {
    if (!ps) lost ??= err; // with ps recovery a lost peer may come back: not a root cause yet
  });
  // The run's monitors report here; so does this catch, for the failures they cannot see (monitors.ts).
  const events = new MonitorLog(eventsFile(experiment.dir), place.rank);
  // Every rank's lines reach rank 0's folder, where its dashboard reads them (src/metrics/remote).
  const stream = startMetricStream({ transport: cluster.transport, rank: place.rank, dir: experiment.dir, timeoutMs: Math.min(timeoutMs, 10_000) });
  let failed = false;
  let dashboard: { url: string; close(): Promise<void> } | null = null;
  try {
    dashboard = await openWorkerDashboard(flags, place.rank, experiment.dir, basename(experiment.dir), flags.resume !== undefined);
    const strategy = createClusterStrategy(strategyName, cluster.group, { ...sOpts, recovery: ps?.recovery });
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
      if (result) printSummary(result, experiment.dir);
      else if (process.env[LAUNCHER_STORE_ENV] !== '1') process.stderr.write(`smolcluster: ${finishedLine(place.rank, (Date.now() - startedAt) / 1000, backend().getThreads(), experiment.dir)}\n`);
    } finally {
      await wandb?.finish();
    }
  } catch (err) {
    if (err instanceof RunOverError) return void process.stderr.write(`smolcluster: worker ${place.rank}: ${err.message}\n`);
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
    ps?.close();
    await cluster.close();
    await store?.close();
    // Last: a finished run's page may stay up in a terminal (live.ts endLiveDashboard).
    if (dashboard && !failed) await (await import('../dashboard/live.js')).endLiveDashboard(dashboard, experiment.dir);
    else await dashboard?.close();
  }
}

/**
 * What rank 0 tells the user: the address workers should use, and that it waits for them. Bound to a
 * wildcard, that is the address workers were told to dial (`connectHost`: cluster_config
 * worker_connect_ip, --master) when there is one, else every address of this host.
 */
export function masterAnnouncement(host: string, port: number, worldSize: number, interfaces = os.networkInterfaces(), connectHost?: string): string {
  const wildcard = host === '0.0.0.0' || host === '::';
  const own = Object.values(interfaces).flatMap((infos) => (infos ?? []).filter((i) => i.family === 'IPv4' && !i.internal).map((i) => i.address));
  const hosts = !wildcard ? [host] : connectHost ? [connectHost] : own.length > 0 ? own : ['127.0.0.1'];
  const use = hosts.map((h) => `${h}:${port}`).join(' or ');
  return `rank 0: rendezvous on ${host}:${port}; workers use --master ${use} (or MASTER_ADDR=${hosts[0]} MASTER_PORT=${port}); waiting for ${worldSize - 1} worker${worldSize === 2 ? '' : 's'}`;
}

/** The line a rank other than the leader ends with: it finished, and where the run's results are. */
export function finishedLine(rank: number, seconds: number, threads: number, dir: string): string {
  return `rank ${rank} finished in ${seconds.toFixed(1)} s (${threads} thread${threads === 1 ? '' : 's'}); rank 0 writes the results to ${dir} on its host`;
}
