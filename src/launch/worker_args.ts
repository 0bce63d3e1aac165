import { type TrainFlags, commFlagsToArgs } from './worker_flags.js';

/** The `worker` command line equivalent to parsed train flags (every worker runs the same config). */
export function flagsToArgs(f: TrainFlags): string[] {
  const a: string[] = ['--model', f.model, '--seed', String(f.seed), '--eval-every', String(f.evalEvery), '--max-steps', String(f.maxSteps)];
  const opt = (flag: string, v: string | number | number[] | undefined): void => {
    if (v !== undefined) a.push(flag, Array.isArray(v) ? v.join(',') : String(v));
  };
  opt('--hidden', f.hidden);
  opt('--layers', f.layers);
  opt('--width', f.width);
  opt('--heads', f.heads);
  opt('--init', f.init);
  opt('--context', f.context);
  opt('--dataset', f.dataset);
  for (const spec of f.fault ?? []) a.push('--fault', spec);
  opt('--epochs', f.epochs);
  opt('--batch-size', f.batchSize);
  opt('--grad-accum', f.gradAccum);
  opt('--lr', f.lr);
  opt('--optimizer', f.optimizer);
  opt('--momentum', f.momentum);
  opt('--weight-decay', f.weightDecay);
  opt('--schedule', f.schedule);
  opt('--warmup-steps', f.warmupSteps);
  opt('--clip-grad-norm', f.clipGradNorm);
  opt('--data-dir', f.dataDir);
  opt('--data-file', f.dataFile);
  opt('--tokenizer', f.tokenizer);
  opt('--name', f.name);
  opt('--experiments-dir', f.experimentsDir);
  opt('--output', f.output);
  opt('--save', f.save);
  opt('--threads', f.threads);
  opt('--backend', f.backend);
  opt('--checksum-every', f.checksumEvery);
  opt('--timeout', f.timeout);
  opt('--strategy', f.strategy);
  opt('--straggler-timeout', f.stragglerTimeout);
  opt('--ps-reply', f.psReply);
  opt('--push-every', f.pushEvery);
  opt('--staleness-bound', f.stalenessBound);
  opt('--quantize', f.quantize);
  opt('--iface', f.iface);
  opt('--checkpoint-every', f.checkpointEvery);
  opt('--checkpoint-dir', f.checkpointDir);
  opt('--keep-checkpoints', f.keepCheckpoints);
  opt('--resume', f.resume);
  opt('--min-workers', f.minWorkers);
  if (f.elastic) a.push('--elastic');
  if (f.serverTrains) a.push('--server-trains');
  if (f.trackGradients) a.push('--track-gradients');
  if (f.augment) a.push('--augment');
  if (f.enableLoadBalancing) a.push('--enable-load-balancing');
  opt('--load-balance-policy', f.loadBalancePolicy);
  opt('--rebalance-interval', f.rebalanceInterval);
  a.push(...commFlagsToArgs(f));
  return a;
}
