import { type ChildProcess, spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { StoreServer } from '../comm/store/server.js';
import { TOKEN_ENV, generateToken } from '../comm/token.js';
import { LAUNCHER_STORE_ENV, type TrainFlags, checkpointEvery, clusterSignature, configFrom } from './worker_flags.js';
import { LauncherEvents, RUN_OWNER_ENV } from '../metrics/events.js';
import { finalizeTrace } from '../metrics/trace.js';
import { experimentName, experimentPaths, claimNamedRun, resumedName } from '../train/run/experiment.js';
import { resolveThreads } from '../train/engine/threads.js';
import { flagsToArgs } from './worker_args.js';
import { RESTARTS_ENV, superviseElastic } from './elastic_supervisor.js';
import { FAULT_ENV } from '../train/loop/faults.js';
import { psRecoverable } from '../train/strategies/ps_common.js';
import { stageSplitOf } from '../train/strategies/registry.js';
import { type WorkerExit, describeFailure } from './exit_report.js';
import { probeLiveness } from './liveness.js';
import { preflight } from './preflight.js';
import { readInitGguf } from '../train/run/init_source.js';

const CLI = fileURLToPath(new URL('../cli/main.js', import.meta.url));

/** How long the last worker still running after a failure gets before it is killed. */
const LAST_WORKER_GRACE_MS = 2000;

/**
 * `train --workers N`: hosts the rendezvous store on 127.0.0.1 (a free port, no race), spawns N
 * `worker` processes with torchrun-style environment variables and a fresh cluster token, and
 * supervises them. Rank 0 owns the terminal (progress bar, summary); other ranks' lines are
 * prefixed with their rank. When one worker fails, the others get the peer timeout to notice and
 * exit by themselves; the launcher then stops any left and exits non-zero naming the worker that
 * caused it (exit_report.ts).
 */
export async function launchLocalCluster(flags: TrainFlags & { workers: number }): Promise<number> {
  // ps / async-ps: rank 0 is the server, besides the workers.
  const n = flags.workers + (flags.strategy === 'ps' || flags.strategy === 'async-ps' ? 1 : 0);
  const threads = resolveThreads(flags.threads, n);
  const token = generateToken();
  // An --init GGUF file's header, read once: its spec and tokenizer are asked for synchronously later.
  await readInitGguf(flags.init);
  const config = configFrom(flags, threads);
  // Root causes that every rank would hit are found here, once, before any worker starts.
  preflight(config, n, stageSplitOf(flags));
  if (flags.name !== undefined) claimNamedRun(experimentPaths(flags.experimentsDir, flags.name).dir, flags);
  const startStore = (): Promise<StoreServer> => StoreServer.start({ host: '127.0.0.1', port: 0, token, worldSize: n, signature: clusterSignature(config, flags) });
  let store = await startStore();
  const name = flags.name ?? resumedName(flags, config.model) ?? experimentName(config.model, undefined, flags.experimentsDir);
  const args = [CLI, 'worker', ...flagsToArgs({ ...flags, name, threads })];
  const env = {
    ...process.env, [TOKEN_ENV]: token, [LAUNCHER_STORE_ENV]: '1', [RUN_OWNER_ENV]: 'launcher',
    MASTER_ADDR: '127.0.0.1', MASTER_PORT: String(store.port), WORLD_SIZE: String(n),
  };
  // The launcher owns the run's events and, with --dashboard, serves the page: it sees every worker.
  const { dir } = experimentPaths(flags.experimentsDir, name);
  const dashboard = flags.dashboard
    ? await import('../dashboard/live.js')
      .then((m) => m.openLiveDashboard({ dir, name, port: flags.port, host: flags.dashboardHost, thread: false, resuming: flags.resume !== undefined }))
      .catch(async (e: unknown) => {
        await store.close();
        throw e;
      })
    : null;
  const events = new LauncherEvents(dir, n);
  const spawnRank = (rank: number, restarts = 0, argv = args, vars: NodeJS.ProcessEnv = env, ipc = false): ChildProcess =>
    spawnWorker(argv, { ...vars, RANK: String(rank), LOCAL_RANK: String(rank), ...(restarts > 0 ? { [RESTARTS_ENV]: String(restarts) } : {}) }, rank, ipc);
  const graceMs = (flags.timeout + 10) * 1000;
  const children: ChildProcess[] = [];
  /** 0 when the run succeeded although processes were lost on the way (elastic, or restarted). */
  let elasticCode = -1;
  /** Every worker succeeded (the dashboard may then stay up). */
  let finished = false;
  /** Set when the user stopped the run (Ctrl-C): the workers' deaths are then no failure of theirs. */
  let interrupted: NodeJS.Signals | null = null;
  const stopAll = (signal: NodeJS.Signals): void => {
    interrupted ??= signal;
    children.forEach((c) => c.exitCode === null && c.kill('SIGTERM'));
  };
  process.once('SIGINT', stopAll);
  process.once('SIGTERM', stopAll);
  // Restarted processes run without the --fault knobs: they were the crash.
  const resumeArgs = [CLI, 'worker', ...flagsToArgs({ ...flags, name, threads, resume: 'auto', fault: undefined })];
  const resumeEnv: NodeJS.ProcessEnv = { ...env };
  delete resumeEnv[FAULT_ENV];
  // ps: the server re-admits a restarted worker and workers re-dial a restarted server, so only the
  // process that failed is restarted (the server from its last checkpoint, when there are any).
  const psAlone = !flags.elastic && (flags.maxRestarts ?? 0) > 0 && psRecoverable(flags.strategy, { ...flags, gradAccum: config.gradAccum });
  try {
    if (flags.elastic || psAlone) {
      const rejoinArgs = [CLI, 'worker', ...flagsToArgs({ ...flags, name, threads, fault: undefined })];
      const restartable = psAlone ? (rank: number): boolean => rank !== 0 || checkpointEvery(flags) > 0 : undefined;
      // A parameter server that hangs (alive, not answering) is killed and restarted like a crashed one.
      const probed = (rank: number): boolean => psAlone && rank === 0 && restartable!(0);
      const spawn = (rank: number, restarts: number): ChildProcess => {
        const child = flags.elastic || restarts === 0
          ? spawnRank(rank, restarts, args, env, probed(rank))
          : spawnRank(rank, restarts, rank === 0 ? resumeArgs : rejoinArgs, resumeEnv, probed(rank));
        if (probed(rank)) probeLiveness(child, { everyMs: 250, deadlineMs: flags.timeout * 1000, onHung: (ms) => killHung(child, rank, ms, events) });
        children.push(child);
        return child;
      };
      elasticCode = await superviseElastic({ workers: n, maxRestarts: flags.maxRestarts ?? 0, spawn, events, graceMs, restartable });
      finished = !interrupted && elasticCode === 0;
      return interrupted ? reportInterrupted(interrupted, n) : elasticCode;
    }
    // Otherwise --max-restarts restarts the whole cluster from its last checkpoint (as torchrun does).
    for (let attempt = 0; ; attempt++) {
      const cluster = Array.from({ length: n }, (_, rank) => (attempt === 0 ? spawnRank(rank) : spawnRank(rank, attempt, resumeArgs, resumeEnv)));
      children.push(...cluster);
      cluster.forEach((child, rank) => {
        if (attempt === 0) events.workerStarted(rank, child.pid);
        else events.workerRestarted(rank, child.pid, attempt);
        child.on('exit', (code, signal) => events.workerExited(rank, code, signal));
      });
      const exits = await supervise(cluster, graceMs);
      if (interrupted) return reportInterrupted(interrupted, n);
      const code = report(exits);
      if (code === 0 || attempt >= (flags.maxRestarts ?? 0) || checkpointEvery(flags) === 0) {
        elasticCode = attempt > 0 ? code : -1;
        finished = code === 0;
        return code;
      }
      process.stderr.write(`smolcluster: restarting the cluster from its last checkpoint (restart ${attempt + 1} of ${flags.maxRestarts})\n`);
      // A fresh store: the old one holds the crashed cluster's data addresses.
      await store.close();
      store = await startStore();
      resumeEnv.MASTER_PORT = String(store.port);
    }
  } finally {
    process.off('SIGINT', stopAll);
    process.off('SIGTERM', stopAll);
    // Rank 0 writes trace.json at a successful end; after a failure, what the ranks recorded.
    if (flags.trace) finalizeTrace(dir);
    events.end(elasticCode === 0);
    await store.close();
    // A finished run's page stays up in a terminal (live.ts endLiveDashboard); a failed or stopped one closes.
    if (dashboard && finished) await (await import('../dashboard/live.js')).endLiveDashboard(dashboard, dir);
    else await dashboard?.close();
  }
}

/** A rank's process; `ipc` opens the channel the liveness probe pings over (liveness.ts). */
function spawnWorker(args: string[], env: NodeJS.ProcessEnv, rank: number, ipc = false): ChildProcess {
  if (rank === 0) return spawn(process.execPath, args, { env, stdio: ['inherit', 'inherit', 'inherit', ...(ipc ? ['ipc' as const] : [])] });
  const child = spawn(process.execPath, args, { env, stdio: ['ignore', 'pipe', 'pipe', ...(ipc ? ['ipc' as const] : [])] });
  for (const stream of [child.stdout, child.stderr]) {
    if (stream) createInterface({ input: stream }).on('line', (line) => process.stderr.write(`[rank ${rank}] ${line}\n`));
  }
  return child;
}

/** A process that stopped answering the liveness probe: killed, so the supervisor restarts it. */
function killHung(child: ChildProcess, rank: number, silentMs: number, events: LauncherEvents): void {
  process.stderr.write(`smolcluster: rank ${rank} (pid ${child.pid}) has not answered the launcher for ${(silentMs / 1000).toFixed(1)} s (hung or stopped): killing it to restart it\n`);
  events.workerHung(rank, child.pid, silentMs);
  child.kill('SIGKILL');
}

/** Waits for every child; after the first failure, the rest get `graceMs` before being killed. */
function supervise(children: ChildProcess[], graceMs: number): Promise<WorkerExit[]> {
  return new Promise((resolve) => {
    const exits: WorkerExit[] = [];
    const killed = new Set<number>();
    let killer: NodeJS.Timeout | null = null;
    children.forEach((child, rank) => {
      child.on('exit', (code, signal) => {
        exits.push({ rank, code, signal, killedByLauncher: killed.has(rank) });
        const failed = code !== 0;
        const killLeft = (): void => children.forEach((c, r) => {
          if (c.exitCode === null && c.signalCode === null && c.kill('SIGKILL')) killed.add(r);
        });
        if (failed && !killer) killer = setTimeout(killLeft, graceMs);
        // Everyone else has stopped after a failure: whoever is left is hung; no need to wait long.
        if (killer && exits.length === children.length - 1) {
          clearTimeout(killer);
          killer = setTimeout(killLeft, LAST_WORKER_GRACE_MS);
        }
        if (exits.length === children.length) {
          if (killer) clearTimeout(killer);
          resolve(exits);
        }
      });
    });
  });
}

/** The user stopped the run: said as such (not as a worker killed by a signal), exit status 128 + signal. */
function reportInterrupted(signal: NodeJS.Signals, workers: number): number {
  process.stderr.write(`smolcluster: interrupted (${signal}${signal === 'SIGINT' ? ', Ctrl-C' : ''}): stopped the run's ${workers} worker process${workers === 1 ? '' : 'es'}\n`);
  return signal === 'SIGINT' ? 130 : 143;
}

/** 0 when every worker succeeded; otherwise 1, with the failure line (exit_report.ts) on stderr. */
function report(exits: WorkerExit[]): number {
  const failure = describeFailure(exits);
  if (failure === null) return 0;
  process.stderr.write(`smolcluster: error: ${failure}\n`);
  return 1;
}
