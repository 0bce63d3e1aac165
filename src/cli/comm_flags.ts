import { type Command, Option } from 'commander';
import { positiveNumber } from './options.js';

/** Flags of the gradient exchange (allreduce's buckets and overlap); shared by train and worker. */
export interface CommFlags {
  /** Gradient bucket cap in MB (default 25, like torch DDP). */
  bucketMb?: number;
  /** First bucket's cap in MB (default 1). */
  firstBucketMb?: number;
  /** Send buckets while backward goes on. */
  overlap?: boolean;
}

export function addCommFlags(cmd: Command): Command {
  return cmd
    .option('--bucket-mb <mb>', 'allreduce: gradient bucket cap in MB (default 25, like torch DDP)', positiveNumber)
    .option('--first-bucket-mb <mb>', 'allreduce: cap of the first bucket (the last layers) in MB (default 1)', positiveNumber)
    .addOption(new Option('--overlap', 'allreduce: all-reduce each gradient bucket as soon as backward has produced it'));
}

/** The worker command line for these flags (the launcher passes them on). */
export function commFlagsToArgs(f: CommFlags): string[] {
  const a: string[] = [];
  if (f.bucketMb !== undefined) a.push('--bucket-mb', String(f.bucketMb));
  if (f.firstBucketMb !== undefined) a.push('--first-bucket-mb', String(f.firstBucketMb));
  if (f.overlap) a.push('--overlap');
  return a;
}

/** Bucket caps in floats, or undefined for the defaults. */
export function bucketSizesFrom(f: CommFlags): { capFloats: number; firstCapFloats: number } | undefined {
  if (f.bucketMb === undefined && f.firstBucketMb === undefined) return undefined;
  const floats = (mb: number): number => Math.max(1, Math.floor((mb * (1 << 20)) / 4));
  return { capFloats: floats(f.bucketMb ?? 25), firstCapFloats: floats(f.firstBucketMb ?? Math.min(1, f.bucketMb ?? 1)) };
}
