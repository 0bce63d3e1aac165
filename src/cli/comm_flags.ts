import { type Command, Option } from 'commander';
import { COMPRESSIONS } from '../train/strategies/allreduce.js';
import { oneOf, positiveInt, positiveNumber, nonNegativeNumber } from './options.js';

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
