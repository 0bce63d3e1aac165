/**
 * `worker --elastic`: a worker of an elastic all-reduce run (train/strategies/elastic_allreduce.ts).
 * It reaches the rendezvous store under its stable id (its rank), takes part in the membership
 * epochs (comm/elastic.ts) and trains through the one loop; every change of members is an event.
 */
import { elasticBalancerFromFlags, rebalanceLine } from '../balance/index.js';
import { ElasticGroup, RunOverError } from '../comm/elastic.js';
import { StoreClient } from '../comm/store/client.js';
import { resolveToken } from '../comm/token.js';
import { chooseInterface, isLoopbackHost } from './iface.js';
import type { Placement } from './env.js';
import { RESTARTS_ENV } from './elastic_supervisor.js';
import { appendEvent, eventsFile } from '../metrics/events.js';
import { ProgressObserver } from '../metrics/progress_observer.js';
import type { TrainConfig } from '../train/run/config.js';
import { experimentName, experimentPaths } from '../train/run/experiment.js';
import { sharedRunName } from '../train/run/run_name.js';
import { sharedPrecision } from '../train/engine/precision_agreement.js';
import type { FaultSpec } from '../train/loop/faults.js';
import { MonitorLog } from '../train/loop/monitors.js';
import { runTraining } from '../train/run/run.js';
import { tensorReducer } from '../train/boundary/reducer.js';
import { ElasticAllReduceStrategy } from '../train/strategies/elastic_allreduce.js';
import { ConfigError, SmolError } from '../util/errors.js';
import type { TrainFlags, WorkerOutcome } from './worker_flags.js';

/** How long candidates of a new membership epoch wait for the previous members to announce. */
const SETTLE_MS = 2000;

/** Trains as one member of the elastic run. */
export async function runElasticWorker(
  flags: TrainFlags, place: Placement, config: TrainConfig, signature: string, faults: FaultSpec[], onResult: (o: WorkerOutcome) => void = () => {},
  /** The store connection of a worker that found the store by DNS-SD (its id is the rank the store gave). */
  claimedStore?: StoreClient,
): Promise<WorkerOutcome> {
  if ((flags.strategy ?? 'allreduce') !== 'allreduce') throw new ConfigError('command line', '--elastic', `works with --strategy allreduce, not ${flags.strategy}`);
  if (flags.checkpointEvery || flags.resume) throw new ConfigError('command line', '--elastic', 'keeps every committed step in the survivors\' memory (the run goes on through any loss while --min-workers remain); writing its membership epochs to disk and resuming them is not implemented, so --checkpoint-every and --resume cannot be combined with it');
  const minWorkers = flags.minWorkers ?? 1;
  if (minWorkers > place.worldSize) throw new ConfigError('command line', '--min-workers', `${minWorkers} is more than the ${place.worldSize} workers of the run`);
  const timeoutMs = flags.timeout * 1000;
  const token = resolveToken({});
  // The store is never in a worker (it would die with it): the launcher or `smolcluster store` hosts it.
  const store = claimedStore ?? await StoreClient.connect({
    host: place.masterHost, port: place.masterPort, token, worldSize: place.worldSize, signature, rank: place.rank, timeoutMs,
  }).catch((err: unknown) => {
    throw new SmolError('NO_STORE', `${(err as Error).message}; an --elastic run's rendezvous store runs in a process of its own: \`train --workers N\` hosts it in the launcher, on several hosts start \`smolcluster store\` first (docs/ELASTIC.md)`, { cause: err });
  });
  // No member is sure to outlive the others: the first to ask names the run, by hand too (run_name.ts).
  const name = await sharedRunName({ name: flags.name, drawn: () => experimentName(config.model, undefined, flags.experimentsDir), store }).catch((err: unknown) => {
    store.close();
    throw err;
  });
  // --precision auto: likewise the first member's choice (precision_agreement.ts).
  await sharedPrecision({ config, store }).catch((err: unknown) => {
    store.close();
    throw err;
  });
  const iface = chooseInterface({ requested: flags.iface, masterHost: place.masterHost });
  const listenHost = iface?.address ?? (isLoopbackHost(place.masterHost) ? place.masterHost : '0.0.0.0');
  const elastic = new ElasticGroup(store, {
    id: place.rank, maxWorkers: place.worldSize, minWorkers, token, signature, listenHost,
    advertiseHost: listenHost === '0.0.0.0' ? store.localAddress : undefined,
    settleMs: Math.min(SETTLE_MS, timeoutMs), timeoutMs, group: { timeoutMs, reducer: tensorReducer },
  });
  const experiment = experimentPaths(flags.experimentsDir, name);
  const events = new MonitorLog(eventsFile(experiment.dir), place.rank);
  const balance = elasticBalancerFromFlags(flags, (e) => {
    appendEvent(experiment.dir, 'rebalance', e);
    process.stderr.write(`smolcluster: ${rebalanceLine(e)}\n`);
  });
  const strategy = new ElasticAllReduceStrategy(elastic, place.rank, place.worldSize, {
    balance: balance ? { shares: balance, batchSize: config.batchSize } : undefined,
    onChange: (c) => appendEvent(experiment.dir, 'membership', {
      rank: place.rank, epoch: c.epoch, members: c.members, joined: c.joined, left: c.left, reason: c.reason, step: c.step, steps_lost: c.stepsLost,
    }),
  });
  try {
    const result = await runTraining({
      config, strategy, experiment, observer: new ProgressObserver(place.worldSize), output: flags.output, save: flags.save, saveDtype: flags.saveDtype, saveQuantize: flags.saveQuantize, saveShardSize: flags.saveShardSize, events, faults,
      trace: flags.trace, rejoin: Number(process.env[RESTARTS_ENV] ?? 0) > 0, balance: balance ?? undefined,
    });
    onResult({ result, dir: experiment.dir });
    return { result, dir: experiment.dir };
  } catch (err) {
    if (err instanceof RunOverError) {
      process.stderr.write(`smolcluster: worker ${place.rank}: ${err.message}\n`);
      return { result: null, dir: experiment.dir };
    }
    events.failure(err);
    throw err;
  } finally {
    events.close();
    await elastic.close();
    store.close();
  }
}
