/**
 * ZeRO's sharded checkpoints. Every rank writes its shard (parameters and optimizer state of its
 * range) to `dir/rank-<r>/ckpt-<step>.smolckpt` like any strategy with state of its own
 * (checkpoints.ts); each file carries a `zero.shard` record [stage, rank, world, start, end, total],
 * and rank 0 writes `dir/zero-manifest.json`: the world size, stage, every rank's range and the
 * run's identity at its global batch (the config with --batch-size × workers: resharding keeps the
 * global batch, so the steps and the data order stay those of the saved run).
 *
 * Resuming at the same world size loads each rank's own file. At another world size the manifest
 * names the old shards: the newest step every old rank saved is read file by file, and each new
 * rank copies the parts of the old shards that overlap its new range (parameters and every
 * optimizer state buffer); the step count, random streams and loop position come from old rank 0.
 * No rank ever assembles the whole arena.
 */
import { existsSync, readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { type CheckpointFileHeader, CheckpointError, readModelHeader } from '../../nn/checkpoint.js';
import type { Module } from '../../nn/module.js';
import type { Optimizer } from '../../nn/optim/optimizer.js';
import type { ShardedModel } from '../../parallel/zero/sharded_model.js';
import { install, installAll, valuesToReceive } from '../../tensor/boundary/host_values.js';
import { writeFileAtomic } from '../../util/atomic_file.js';
import { type LoopState, type Restored, ResumeError, checkpointFile, listCheckpoints } from './checkpoints.js';

export const MANIFEST = 'zero-manifest.json';

export interface ZeroManifest {
  format: 'smolcluster-zero-manifest';
  /** The run at its global batch, without its process count (a resharded resume must be the same run). */
  run: string;
  stage: number;
  world: number;
  /** Parameters in the whole arena. */
  total: number;
  /** Every rank's [start, end). */
  ranges: Array<[number, number]>;
}

export function writeManifest(dir: string, sharded: ShardedModel, run: string): void {
  const manifest: ZeroManifest = { format: 'smolcluster-zero-manifest', run, stage: sharded.stage, world: sharded.plan.ranges.length, total: sharded.plan.total, ranges: sharded.plan.ranges.map(([a, b]) => [a, b]) };
  writeFileAtomic(join(dir, MANIFEST), JSON.stringify(manifest, null, 1));
}

function readManifest(dir: string): ZeroManifest | null {
  const file = join(dir, MANIFEST);
  if (!existsSync(file)) return null;
  let m: ZeroManifest;
  try {
    m = JSON.parse(readFileSync(file, 'utf8')) as ZeroManifest;
  } catch (e) {
    throw new ResumeError(dir, `${MANIFEST} is not valid JSON (${(e as Error).message})`);
  }
  const ranges = Array.isArray(m?.ranges) ? m.ranges : [];
  const tiles = ranges.every(([a, b], r) => Number.isInteger(a) && Number.isInteger(b) && a <= b && a === (r === 0 ? 0 : ranges[r - 1][1]));
  if (m?.format !== 'smolcluster-zero-manifest' || !Number.isInteger(m.world) || ranges.length !== m.world || !tiles || ranges[ranges.length - 1]?.[1] !== m.total) {
    throw new ResumeError(dir, `${MANIFEST} does not describe shards that tile the arena`);
  }
  return m;
}

interface OldShard {
  file: string;
  header: CheckpointFileHeader;
  floats: Float32Array;
  range: [number, number];
}

/**
 * Old rank r's file of `step`, checked against the manifest and this run. The number of steps the
 * run was planned for is not checked: a resumed run may ask for more (the LR schedule follows this
 * run's plan, as an unsharded resume's does).
 */
function readOldShard(dir: string, m: ZeroManifest, r: number, step: number, optimizer: Optimizer, architecture: unknown): OldShard {
  const file = checkpointFile(join(dir, `rank-${r}`), step);
  const { header: h, data, dataStart } = readModelHeader(file);
  if (h.format !== 'smolcluster-checkpoint') throw new CheckpointError(file, 'is a model file, not a training checkpoint');
  const header = h as CheckpointFileHeader;
  const state = header.state as unknown as LoopState;
  if (!Number.isInteger(state?.position?.step)) throw new CheckpointError(file, 'has no loop position');
  if (JSON.stringify(header.architecture) !== JSON.stringify(architecture)) throw new CheckpointError(file, 'holds another architecture');
  if (header.optimizer?.kind !== optimizer.constructor.name) throw new CheckpointError(file, `holds ${String(header.optimizer?.kind)} state, but the optimizer is ${optimizer.constructor.name}`);
  if (header.optimizer.state.length !== optimizer.stateStorages().length) throw new CheckpointError(file, 'holds another number of optimizer state buffers');
  const floats = new Float32Array(data.buffer.slice(data.byteOffset + dataStart, data.byteOffset + data.length));
  const rec = (header.extra ?? []).find((e) => e.name === 'zero.shard');
  if (!rec) throw new CheckpointError(file, 'has no zero.shard record: not a ZeRO checkpoint');
  const [, rank, world, start, end, total] = floats.subarray(rec.offset, rec.offset + 6);
  const [a, b] = m.ranges[r];
  if (rank !== r || world !== m.world || start !== a || end !== b || total !== m.total) {
    throw new CheckpointError(file, `its shard (rank ${rank} of ${world}, [${start}, ${end}) of ${total}) is not rank ${r}'s of the manifest ([${a}, ${b}) of ${m.total})`);
  }
  const length = b - a;
  for (const s of header.optimizer.state) if (s.shape[0] !== length) throw new CheckpointError(file, `optimizer state of ${s.shape[0]} floats for a shard of ${length}`);
  return { file, header, floats, range: [a, b] };
}

/**
 * Restores this rank's shard from a checkpoint written at another world size, or returns null
 * when there is nothing to reshard (no manifest, or the same world size: each rank's own file).
 */
export function restoreResharded(
  dir: string, sharded: ShardedModel, model: Module, architecture: unknown, optimizer: Optimizer, run: string, _totalSteps?: number,
): Restored | null {
  const m = readManifest(dir);
  if (!m || m.world === sharded.plan.ranges.length) return null;
  if (m.run !== run) throw new ResumeError(dir, `its ZeRO shards belong to another run (${m.run}), not this one (${run})`);
  if (m.total !== sharded.plan.total) throw new ResumeError(dir, `its ZeRO shards cover ${m.total} parameters, this model has ${sharded.plan.total}`);
  // The newest step every old rank saved.
  const steps = listCheckpoints(join(dir, 'rank-0')).map((f) => Number(/ckpt-(\d+)\.smolckpt$/.exec(basename(f))![1]));
  const refused: string[] = [];
  for (const step of steps) {
    try {
      return reshardStep(dir, m, step, sharded, model, architecture, optimizer);
    } catch (err) {
      if (!(err instanceof CheckpointError)) throw err;
      refused.push(err.message);
    }
  }
  throw new ResumeError(dir, `no step of the ${m.world} ZeRO shards could be resharded to ${sharded.plan.ranges.length} ranks${refused.length ? `: ${refused.join('; ')}` : ' (no checkpoint files in rank-0/)'}`);
}

function reshardStep(
  dir: string, m: ZeroManifest, step: number, sharded: ShardedModel, model: Module, architecture: unknown, optimizer: Optimizer,
): Restored {
  const [a, b] = sharded.range;
  // On the cpu the shard and the state themselves; on a GPU host arrays installed at the end (the old shards tile the new range).
  const params = valuesToReceive(sharded.shard.params);
  const states = optimizer.stateStorages().map(valuesToReceive);
  // Everything is read and checked before anything is written: a refused step changes nothing.
  const olds = m.ranges.map((_, r) => readOldShard(dir, m, r, step, optimizer, architecture));
  const stepsTaken = olds[0].header.optimizer.steps;
  for (const o of olds) if (o.header.optimizer.steps !== stepsTaken) throw new CheckpointError(o.file, `optimizer at step ${o.header.optimizer.steps}, rank 0's at ${stepsTaken}`);
  for (const o of olds) {
    const [s, e] = o.range;
    const from = Math.max(s, a);
    const to = Math.min(e, b);
    if (from >= to) continue;
    params.set(o.floats.subarray(from - s, to - s), from - a);
    o.header.optimizer.state.forEach((rec, i) => states[i].set(o.floats.subarray(rec.offset + from - s, rec.offset + to - s), from - a));
  }
  install(sharded.shard.params, params);
  installAll(optimizer.stateStorages(), states);
  const first = olds[0];
  // Module buffers and random streams are the same on every rank: old rank 0's.
  let offset = first.range[1] - first.range[0];
  model.writeBuffers(model.namedBufferStorages().map(([, buf]) => first.floats.subarray(offset, (offset += buf.size))));
  for (const [name, rng] of model.namedRngs()) {
    const saved = first.header.rngs?.[name];
    if (!saved) throw new CheckpointError(first.file, `has no state for the random stream ${name}`);
    rng.setState(saved);
  }
  optimizer.restoreSteps(stepsTaken);
  const state = first.header.state as unknown as LoopState;
  return {
    position: state.position, file: `${first.file} (resharded from ${m.world} ranks to ${sharded.plan.ranges.length})`, ...(state.strategy ? { strategy: state.strategy } : {}),
    ...(state.evaluations ? { evaluations: state.evaluations } : {}),
  };
}
