/**
 * The driver's side of `generate --stages N` / `serve --stages N`: starts the N-1 `smolcluster stage`
 * processes on 127.0.0.1 (a rendezvous store on a free port, a fresh cluster token) — or, with
 * --stage-master HOST:PORT, hosts the rendezvous there and waits for stages started by hand on
 * other hosts — then joins as rank 0, holding stage 0, and drives the pipeline (PipelinedBatch).
 * A stage that exits before the pipeline stands fails the start naming it and its last words.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { parseAddress } from '../../comm/tcp/mesh.js';
import { StoreServer } from '../../comm/store/server.js';
import { TOKEN_ENV, generateToken, resolveToken } from '../../comm/token.js';
import type { ModelSpec } from '../../nn/models/index.js';
import type { Precision } from '../../tensor/precision.js';
import { SmolError } from '../../util/errors.js';
import { PipelinedBatch } from './pipelined_batch.js';
import { type JoinedStage, describePlacement, joinStages, stageSignature } from './stage_cluster.js';
import type { StageWeights } from '../../parallel/pipeline/stage_weights.js';
import { availableMemory } from '../../util/node_memory.js';
import { checkStagesMemory, stagesNeed } from './stage_memory.js';
import { describeInferenceMemory, gb } from '../../generate/inference_memory.js';

const CLI = fileURLToPath(new URL('../../cli/main.js', import.meta.url));

export interface PipelineLaunch {
  /** What --model named (each stage resolves it on its own host). */
  source: string;
  spec: ModelSpec;
  /**
   * What rank 0 loads its layers from (stage_source.ts): its PEFT adapter (--adapter) and --quantize
   * scheme are passed on to every stage, which reads the adapter on its own host.
   */
  weights: StageWeights;
  stages: number;
  /** HOST:PORT: stages started elsewhere by hand; absent: started here. */
  master?: string;
  timeoutMs: number;
  maxBatch: number;
  precision?: Precision;
  threads?: number;
  /** Lines for the user (the plan, the stages' own output). */
  log(line: string): void;
}

export interface Pipeline {
  batch: PipelinedBatch;
  joined: JoinedStage;
  /** Stops the stages and closes the connections. */
  close(): Promise<void>;
}

export async function startPipeline(o: PipelineLaunch): Promise<Pipeline> {
  const local = o.master === undefined;
  // Stages started here share this machine's memory: a model it cannot hold is refused before any starts.
  if (local) {
    const here = availableMemory();
    const need = stagesNeed(o.spec, o.weights, o);
    checkStagesMemory(need, Array.from({ length: o.stages }, (_, rank) => ({ rank, host: 'here', where: rank === 0 ? 'this process' : '127.0.0.1', bytes: here })));
    o.log(`memory ${describeInferenceMemory(need.need, false)}, ${gb(need.total)} over ${o.stages} stage processes; this machine has ${gb(here)} available`);
  }
  const token = local ? generateToken() : resolveToken();
  const store = local ? await StoreServer.start({ host: '127.0.0.1', port: 0, token, worldSize: o.stages, signature: stageSignature(o.spec, o.precision, o.weights) }) : null;
  const { host: masterHost, port: masterPort } = local ? { host: '127.0.0.1', port: store!.port } : parseAddress(o.master!);
  const children = local ? Array.from({ length: o.stages - 1 }, (_, i) => spawnStage(o, i + 1, `${masterHost}:${masterPort}`, token)) : [];
  if (!local) o.log(`waiting for ${o.stages - 1} stage(s): on each host run  ${byHandCommand(o)}`);
  const exited = new Promise<never>((_, reject) => children.forEach((c, i) => c.once('exit', (code, signal) => reject(new SmolError('STAGE', `pipeline stage ${i + 1} (rank ${i + 1}, 127.0.0.1) exited (${signal ?? `code ${code}`}) before the pipeline stood`)))));
  exited.catch(() => {});
  let joined: JoinedStage;
  try {
    joined = await Promise.race([joinStages({
      spec: o.spec, weights: o.weights, stages: o.stages, rank: 0, masterHost, masterPort, hostStore: !local, token,
      timeoutMs: o.timeoutMs, maxBatch: o.maxBatch, precision: o.precision, log: o.log,
    }), exited]);
  } catch (e) {
    children.forEach((c) => c.exitCode === null && c.kill('SIGTERM'));
    await store?.close();
    throw e;
  }
  const hosts = Array.from({ length: o.stages }, (_, r) => (r === 0 ? 'this process' : joined.cluster.transport.peerHost(r)));
  for (const line of describePlacement(joined.placement, hosts)) o.log(line);
  const batch = new PipelinedBatch(joined.cluster.transport, joined.rows, { timeoutMs: o.timeoutMs });
  return {
    batch, joined,
    async close() {
      await batch.close();
      await Promise.all(children.map((c) => waitExit(c, 5000)));
      await joined.cluster.close();
      await store?.close();
    },
  };
}

/** `smolcluster stage` for rank `rank`, its output lines prefixed with its stage. */
function spawnStage(o: PipelineLaunch, rank: number, master: string, token: string): ChildProcess {
  const adapter = adapterOf(o.weights);
  const args = [CLI, 'stage', '--model', o.source, '--stages', String(o.stages), '--rank', String(rank), '--stage-master', master,
    '--stage-timeout', String(o.timeoutMs / 1000), '--max-batch', String(o.maxBatch), '--precision', o.precision ?? 'fp32',
    ...(o.threads ? ['--threads', String(o.threads)] : []), ...(adapter !== undefined ? ['--adapter', adapter] : []), ...quantizeFlags(o.weights)];
  const child = spawn(process.execPath, args, { env: { ...process.env, [TOKEN_ENV]: token }, stdio: ['ignore', 'pipe', 'pipe'] });
  for (const stream of [child.stdout!, child.stderr!]) {
    let rest = '';
    stream.on('data', (d: Buffer) => {
      const lines = (rest + d.toString()).split('\n');
      rest = lines.pop()!;
      for (const line of lines) if (line) o.log(`[stage ${rank}] ${line}`);
    });
  }
  return child;
}

/** What to run on each other host for stages started by hand: every flag the signature checks. */
function byHandCommand(o: PipelineLaunch): string {
  const flags = ['--model SRC', ...(adapterOf(o.weights) !== undefined ? ['--adapter DIR'] : []), ...quantizeFlags(o.weights),
    ...(o.precision === 'bf16' ? ['--precision bf16'] : []), `--stages ${o.stages}`, '--rank R', `--stage-master ${o.master}`];
  return `SMOLCLUSTER_TOKEN=… smolcluster stage ${flags.join(' ')}`;
}

/** The PEFT adapter folder the stages merge, if any. */
function adapterOf(w: StageWeights): string | undefined {
  return 'file' in w ? w.adapter : undefined;
}

/** `--quantize SCHEME` when the stages quantize their layers at load, else nothing. */
function quantizeFlags(w: StageWeights): string[] {
  return 'seed' in w || w.quantize === undefined ? [] : ['--quantize', w.quantize];
}

/** Resolves when `child` has exited, killing it after `ms`. */
function waitExit(child: ChildProcess, ms: number): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), ms);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
  });
}
