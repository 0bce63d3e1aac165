import { type Command, Option } from 'commander';
import { COMPRESSIONS, type Compression } from '../train/strategies/allreduce.js';
import { oneOf, positiveInt, positiveNumber, nonNegativeNumber } from './options.js';

/** Flags of the gradient exchange (allreduce's buckets and overlap); shared by train and worker. */
export interface CommFlags {
  /** Gradient bucket cap in MB (default 25, like torch DDP). */
  bucketMb?: number;
  /** First bucket's cap in MB (default 1). */
  firstBucketMb?: number;
  /** Send buckets while backward goes on. */
  overlap?: boolean;
  /** allreduce: gradient compression on the wire. */
  compress?: Compression;
  powersgdRank?: number;
  /** diloco / local-sgd: local steps between syncs, outer optimizer. */
  innerSteps?: number;
  outerLr?: number;
  outerMomentum?: number;
}

export function addCommFlags(cmd: Command): Command {
  return cmd
    .option('--bucket-mb <mb>', 'allreduce: gradient bucket cap in MB (default 25, like torch DDP)', positiveNumber)
    .option('--first-bucket-mb <mb>', 'allreduce: cap of the first bucket (the last layers) in MB (default 1)', positiveNumber)
    .addOption(new Option('--overlap', 'allreduce: all-reduce each gradient bucket as soon as backward has produced it'))
    .addOption(new Option('--compress <codec>', 'allreduce: gradients on the wire as fp16, bf16, int8 (error feedback) or powersgd (default none)').choices(COMPRESSIONS).argParser(oneOf(COMPRESSIONS)))
    .option('--powersgd-rank <r>', 'allreduce --compress powersgd: rank of the factors (default 4)', positiveInt)
    .option('--inner-steps <h>', 'diloco, local-sgd: local steps between syncs (default 50)', positiveInt)
    .option('--outer-lr <rate>', 'diloco: outer learning rate (default 0.7)', positiveNumber)
    .option('--outer-momentum <m>', 'diloco: outer Nesterov momentum (default 0.9)', nonNegativeNumber);
}

/** The worker command line for these flags (the launcher passes them on). */
export function commFlagsToArgs(f: CommFlags): string[] {
  const a: string[] = [];
  if (f.bucketMb !== undefined) a.push('--bucket-mb', String(f.bucketMb));
  if (f.firstBucketMb !== undefined) a.push('--first-bucket-mb', String(f.firstBucketMb));
  if (f.overlap) a.push('--overlap');
  const opt = (flag: string, v: string | number | undefined): void => {
    if (v !== undefined) a.push(flag, String(v));
  };
  opt('--compress', f.compress);
  opt('--powersgd-rank', f.powersgdRank);
  opt('--inner-steps', f.innerSteps);
  opt('--outer-lr', f.outerLr);
  opt('--outer-momentum', f.outerMomentum);
  return a;
}

/** Bucket caps in floats, or undefined for the defaults. */
export function bucketSizesFrom(f: CommFlags): { capFloats: number; firstCapFloats: number } | undefined {
  if (f.bucketMb === undefined && f.firstBucketMb === undefined) return undefined;
  const floats = (mb: number): number => Math.max(1, Math.floor((mb * (1 << 20)) / 4));
  return { capFloats: floats(f.bucketMb ?? 25), firstCapFloats: floats(f.firstBucketMb ?? Math.min(1, f.bucketMb ?? 1)) };
}
