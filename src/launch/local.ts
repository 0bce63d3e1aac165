import { type ChildProcess, spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { StoreServer } from '../comm/store/server.js';
import { TOKEN_ENV, generateToken } from '../comm/token.js';
import type { TrainFlags } from '../cli/train_flags.js';
import { LAUNCHER_STORE_ENV } from '../cli/worker.js';
import { configFrom } from '../cli/train_flags.js';
import { experimentName } from '../train/experiment.js';
import { runSignature } from '../train/signature.js';
import { resolveThreads } from '../train/threads.js';
import { flagsToArgs } from './worker_args.js';

const CLI = fileURLToPath(new URL('../cli/main.js', import.meta.url));

interface Exit {
  rank: number;
  code: number | null;
  signal: NodeJS.Signals | null;
}

/**
 * `train --workers N`: hosts the rendezvous store on 127.0.0.1 (a free port, no race), spawns N
 * `worker` processes with torchrun-style environment variables and a fresh cluster token, and
 * supervises them. Rank 0 owns the terminal (progress bar, summary); other ranks' lines are
 * prefixed with their rank. When one worker fails, the others get the peer timeout to notice and
 * exit by themselves; the launcher then stops any left and exits non-zero naming the first failure.
 */
export async function launchLocalCluster(flags: TrainFlags & { workers: number }): Promise<number> {
  const n = flags.workers;
  const threads = resolveThreads(flags.threads, n);
  const token = generateToken();
  const config = configFrom(flags, threads);
  const store = await StoreServer.start({ host: '127.0.0.1', port: 0, token, worldSize: n, signature: runSignature(config) });
  const name = flags.name ?? experimentName(config.model);
  const args = [CLI, 'worker', ...flagsToArgs({ ...flags, name, threads })];
  const env = { ...process.env, [TOKEN_ENV]: token, [LAUNCHER_STORE_ENV]: '1', MASTER_ADDR: '127.0.0.1', MASTER_PORT: String(store.port), WORLD_SIZE: String(n) };
  const children = Array.from({ length: n }, (_, rank) => spawnWorker(args, { ...env, RANK: String(rank), LOCAL_RANK: String(rank) }, rank));
  const stopAll = (): void => children.forEach((c) => c.exitCode === null && c.kill('SIGTERM'));
  process.once('SIGINT', stopAll);
  process.once('SIGTERM', stopAll);
  try {
    const exits = await supervise(children, (flags.timeout + 10) * 1000);
    return report(exits);
  } finally {
    process.off('SIGINT', stopAll);
    process.off('SIGTERM', stopAll);
    await store.close();
  }
}

function spawnWorker(args: string[], env: NodeJS.ProcessEnv, rank: number): ChildProcess {
  if (rank === 0) return spawn(process.execPath, args, { env, stdio: 'inherit' });
  const child = spawn(process.execPath, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
  for (const stream of [child.stdout, child.stderr]) {
    if (stream) createInterface({ input: stream }).on('line', (line) => process.stderr.write(`[rank ${rank}] ${line}\n`));
  }
  return child;
}

/** Waits for every child; after the first failure, the rest get `graceMs` before being killed. */
function supervise(children: ChildProcess[], graceMs: number): Promise<Exit[]> {
  return new Promise((resolve) => {
    const exits: Exit[] = [];
    let killer: NodeJS.Timeout | null = null;
    children.forEach((child, rank) => {
      child.on('exit', (code, signal) => {
        exits.push({ rank, code, signal });
        const failed = code !== 0;
        if (failed && !killer) {
          killer = setTimeout(() => children.forEach((c) => c.exitCode === null && c.signalCode === null && c.kill('SIGKILL')), graceMs);
        }
        if (exits.length === children.length) {
          if (killer) clearTimeout(killer);
          resolve(exits);
        }
      });
    });
  });
}

/** 0 when every worker succeeded; otherwise one line naming the first worker that failed. */
function report(exits: Exit[]): number {
  const first = exits.find((e) => e.code !== 0);
  if (!first) return 0;
  const how = first.signal ? `was killed by ${first.signal}` : `exited with code ${first.code}`;
  const others = exits.filter((e) => e !== first && e.code !== 0).map((e) => e.rank);
  process.stderr.write(
    `smolcluster: error: worker rank ${first.rank} ${how}${others.length ? `; ranks ${others.join(', ')} stopped after it` : ''}\n`,
  );
  return 1;
}
