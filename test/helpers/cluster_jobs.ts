/**
 * Fixtures for the cluster-job tests (not a test file): compute-node processes on 127.0.0.1, an
 * in-process coordinator with short deadlines, and the tests' small job.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { submitJob } from '../../src/cluster/client.js';
import { Coordinator, COORDINATOR_DEFAULTS, type CoordinatorOptions } from '../../src/cluster/coordinator.js';
import type { JobResult } from '../../src/cluster/job.js';
import type { JobSpec } from '../../src/cluster/messages.js';
import { defaultLettersDir, loadLetters, type LettersData } from '../../src/data/letters.js';
import { freePort, startCli, TEST_TOKEN, tempDir, waitFor, type Running } from './cluster.js';

export const ENV = { SMOLCLUSTER_TOKEN: TEST_TOKEN };

/** The tests' job: small enough to run many times, big enough that every round changes the model. */
export const JOB = { rounds: 2, epochs: 5, hidden: 8, lr: 1e-4, seed: 3 };

let cached: LettersData | null = null;
export function letters(): LettersData {
  return (cached ??= loadLetters(defaultLettersDir()));
}

export function jobSpec(overrides: Partial<typeof JOB> = {}): JobSpec {
  const d = letters();
  return { ...JOB, ...overrides, weighting: 'equal', shards: d.train, validation: d.validation };
}

export interface NodeProcess extends Running {
  port: number;
}

/** A compute-node process; resolves once it listens. */
export async function startNode(opts: { port?: number; load?: number; delayMs?: number; coordinator?: number; seed?: number; device?: string; env?: Record<string, string> } = {}): Promise<NodeProcess> {
  const port = opts.port ?? (await freePort());
  const args = ['compute-node', '--host', '127.0.0.1', '--port', String(port), '--heartbeat-ms', '100'];
  args.push('--load-probability', String(opts.load ?? 0), '--busy-delay-ms', String(opts.delayMs ?? 5), '--seed', String(opts.seed ?? port));
  if (opts.coordinator) args.push('--coordinator', `127.0.0.1:${opts.coordinator}`);
  if (opts.device) args.push('--device', opts.device);
  const p = startCli(args, { env: { ...ENV, ...opts.env }, timeoutMs: 120_000 });
  await waitFor(() => p.stderr.includes('compute node on'), `compute node on port ${port} to listen (stderr: ${p.stderr})`, 30_000);
  return Object.assign(p, { port });
}

export function nodesFile(ports: number[], dir = tempDir('nodes')): string {
  const file = join(dir, 'compute_nodes.txt');
  writeFileSync(file, ports.map((p) => `127.0.0.1,${p}\n`).join(''));
  return file;
}

export type Events = Array<{ kind: string } & Record<string, unknown>>;

/** An in-process coordinator with test-sized deadlines; `events` collects what it logs. */
export async function startCoordinator(opts: Partial<CoordinatorOptions> = {}): Promise<{ c: Coordinator; events: Events }> {
  const events: Events = [];
  const c = await Coordinator.start({
    ...COORDINATOR_DEFAULTS,
    host: '127.0.0.1',
    port: 0,
    token: TEST_TOKEN,
    policy: 'least-loaded',
    seed: 1,
    outDir: tempDir('coordinator'),
    deadAfterMs: 1000,
    rescanMs: 100,
    retry: { baseMs: 5, capMs: 100, maxAttempts: 60 },
    noNodeDeadlineMs: 10_000,
    ...opts,
    onEvent: (kind, fields) => {
      events.push({ kind, ...fields });
      opts.onEvent?.(kind, fields);
    },
  });
  return { c, events };
}

export function submit(c: Coordinator, spec: JobSpec = jobSpec()): Promise<JobResult> {
  return submitJob({ host: '127.0.0.1', port: c.port, token: TEST_TOKEN, spec, connectTimeoutMs: 10_000, timeoutMs: 90_000 });
}

export function stopAll(nodes: Running[]): Promise<unknown> {
  for (const n of nodes) {
    n.child.kill('SIGCONT');
    n.child.kill('SIGKILL');
  }
  return Promise.all(nodes.map((n) => n.done));
}

/** What a comparison needs of a result: the validation error of each round and the final weights. */
export function outcome(r: { history: Array<{ validationError: number }>; weightsChecksum: string }): { errors: number[]; checksum: string } {
  return { errors: r.history.map((h) => h.validationError), checksum: r.weightsChecksum };
}

/** The same of a job's result.json (snake_case keys, as users and scripts read it). */
export function fileOutcome(r: { history: Array<{ validation_error: number }>; weights_checksum: string }): { errors: number[]; checksum: string } {
  return { errors: r.history.map((h) => h.validation_error), checksum: r.weights_checksum };
}
