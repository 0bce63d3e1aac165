import { createInterface } from 'node:readline/promises';
import { rankFromEnvironment, worldSizeFromEnvironment } from '../launch/env.js';
import { ConfigError } from '../util/errors.js';

interface Terminal {
  input: NodeJS.ReadableStream & { isTTY?: boolean };
  output: NodeJS.WritableStream;
}

/**
 * SmolCluster's worker asked for its ID when started by hand on a terminal; so does ours when no
 * --rank, RANK (or Slurm's, OpenMPI's) gives it. Off a terminal nothing is asked and the placement
 * fails naming --rank.
 */
export async function withAskedRank<F extends { rank?: number; worldSize?: number }>(
  flags: F, term: Terminal = { input: process.stdin, output: process.stderr }, env: NodeJS.ProcessEnv = process.env,
): Promise<F> {
  if (flags.rank !== undefined || rankFromEnvironment(env) !== undefined || term.input.isTTY !== true) return flags;
  return { ...flags, rank: await askRank(flags.worldSize ?? worldSizeFromEnvironment(env), term) };
}

/** Asks up to three times for a rank in [0, worldSize); the third wrong answer is a ConfigError naming --rank. */
export async function askRank(worldSize: number | undefined, term: Terminal): Promise<number> {
  const rl = createInterface({ input: term.input, output: term.output, terminal: false });
  const range = worldSize !== undefined ? ` (0 to ${worldSize - 1}${worldSize > 1 ? '; a ps server is 0' : ''})` : '';
  try {
    for (let attempt = 1; ; attempt++) {
      const answer = (await rl.question(`this worker's rank${range}: `)).trim();
      const n = Number(answer);
      if (answer !== '' && Number.isInteger(n) && n >= 0 && (worldSize === undefined || n < worldSize)) return n;
      if (attempt === 3) throw new ConfigError('command line', '--rank', `"${answer}" is not a rank${range}; pass --rank`);
      term.output.write(`"${answer}" is not a rank${range}\n`);
    }
  } finally {
    rl.close();
  }
}
