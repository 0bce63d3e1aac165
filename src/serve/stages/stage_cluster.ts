/**
 * Joining a generation pipeline: every process (rank 0 the driver, which serves or prints, ranks
 * 1..P-1 the `smolcluster stage` processes, local or on other hosts) meets at the rendezvous store
 * (comm/rendezvous.ts: authenticated by the cluster token, refused when the model differs), probes
 * its speed and memory, gathers everyone's, computes the same placement, and loads only its own
 * stage's weights.
 */
import { type Cluster, rendezvous } from '../../comm/rendezvous.js';
import { signatureWithSettings } from '../../comm/tcp/signature_settings.js';
import { modelLayers } from '../../nn/layer_list.js';
import type { ModelSpec } from '../../nn/models/index.js';
import { createHash } from 'node:crypto';
import { hostname } from 'node:os';
import { availableMemory } from '../../util/node_memory.js';
import { type RankMemory, checkStagesMemory, stagesNeed } from './stage_memory.js';
import type { Placement } from '../../parallel/pipeline/placement.js';
import type { Precision } from '../../tensor/precision.js';
import { deferredModel } from '../../parallel/pipeline/stage_model.js';
import { type GenerationStage, loadStage } from './stage_model.js';
import { placeGeneration, probeRank } from './stage_placement.js';
import { StageRows } from './stage_rows.js';
import { type StageWeights, heldBytes, heldFormats, weightsSettings } from '../../parallel/pipeline/stage_weights.js';

export interface StageClusterOptions {
  spec: ModelSpec;
  weights: StageWeights;
  stages: number;
  rank: number;
  masterHost: string;
  masterPort: number;
  /** Rank 0 hosts the store unless a launcher already does (false). */
  hostStore?: boolean;
  token?: string;
  /** Start-up and per-message deadline (ms). */
  timeoutMs: number;
  maxBatch: number;
  precision?: Precision;
  /** Bytes this rank gives its stage (default: its available memory, cgroup-aware). */
  memoryBytes?: number;
  /** Progress lines (loading a stage's layers can take minutes). */
  log?(line: string): void;
}

export interface JoinedStage {
  cluster: Cluster;
  stage: GenerationStage;
  rows: StageRows;
  placement: Placement;
}

export async function joinStages(o: StageClusterOptions): Promise<JoinedStage> {
  if (!Number.isInteger(o.stages) || o.stages < 2) throw new RangeError(`--stages must be an integer >= 2 to split a model, got ${o.stages}`);
  const cluster = await rendezvous({
    rank: o.rank, worldSize: o.stages, masterHost: o.masterHost, masterPort: o.masterPort, hostStore: o.hostStore, token: o.token,
    signature: stageSignature(o.spec, o.precision, o.weights), timeoutMs: o.timeoutMs, group: { timeoutMs: o.timeoutMs },
  });
  try {
    const log = o.log ?? (() => {});
    const { memory, maxBatch } = await gatherMemory(cluster, o.memoryBytes ?? availableMemory(), o.maxBatch);
    // Before the probe builds a block and before any weight: a model the nodes cannot hold is refused at once (by every rank alike: rank 0's rows).
    checkStagesMemory(stagesNeed(o.spec, o.weights, { ...o, maxBatch }), memory);
    const probe = probeRank(o.spec, o.maxBatch, memory[cluster.rank].bytes);
    const table = await cluster.group.allGather(Float32Array.of(probe.msPerWeight));
    const probes = Array.from({ length: o.stages }, (_, r) => ({ msPerWeight: table[r], memoryBytes: memory[r].bytes }));
    const whole = deferredModel(o.spec, null);
    // Each weight priced as it will be held: a quantized one at its format's bytes.
    const bytesOf = heldBytes(heldFormats(o.spec, whole, o.weights), o.precision);
    const placement = placeGeneration(o.spec, modelLayers(whole, o.spec.type), probes, { maxBatch: o.maxBatch, bytesOf });
    const [from, to] = placement.ranges[cluster.rank];
    const mib = (placement.layerBytes.slice(from, to).reduce((a, b) => a + b, 0) / 2 ** 20).toFixed(1);
    log(`stage ${cluster.rank}: loading layers ${from}..${to - 1} (${mib} MiB)`);
    const started = performance.now();
    const stage = loadStage(o.spec, from, to, o.weights);
    log(`stage ${cluster.rank}: loaded layers ${from}..${to - 1} in ${((performance.now() - started) / 1000).toFixed(1)} s`);
    return { cluster, stage, rows: new StageRows(stage, o.precision), placement };
  } catch (e) {
    await cluster.close();
    throw e;
  }
}

/**
 * Every rank's available memory and its host, and rank 0's --max-batch (it drives the rows; a stage
 * started by hand may have been given another), gathered before anything is probed or loaded. The host
 * travels as a 24-bit hash of its name (exact in a float32), so that every rank groups the ranks
 * by host alike; the name shown is the address this rank sees it at.
 */
async function gatherMemory(cluster: Cluster, bytes: number, maxBatch: number): Promise<{ memory: RankMemory[]; maxBatch: number }> {
  const hash = createHash('sha256').update(hostname()).digest().readUIntBE(0, 3);
  const table = await cluster.group.allGather(Float32Array.of(bytes / 2 ** 20, hash, maxBatch));
  const memory = Array.from({ length: cluster.size }, (_, r) => ({
    rank: r, bytes: table[3 * r] * 2 ** 20, host: String(table[3 * r + 1]),
    where: r === cluster.rank ? 'this process' : cluster.transport.peerHost(r),
  }));
  return { memory, maxBatch: table[2] };
}

/**
 * What every stage must agree on: the model, the precision, and of the weights the adapter's
 * contents, the --quantize scheme or the GGUF file's formats (a stage of another model is refused at connect).
 */
export function stageSignature(spec: ModelSpec, precision: Precision = 'fp32', weights?: StageWeights): string {
  return signatureWithSettings(`generate ${JSON.stringify(spec)}`, { '--precision': precision, ...weightsSettings(weights) });
}

/** The plan in one line per stage, for logs. */
export function describePlacement(p: Placement, hosts: readonly string[]): string[] {
  return p.ranges.map(([from, to], s) => `stage ${s} (rank ${s}${hosts[s] ? ` at ${hosts[s]}` : ''}): layers ${from}..${to - 1}, speed ${p.rankSpeed[s].toFixed(2)}, ${(p.layerBytes.slice(from, to).reduce((a, b) => a + b, 0) / 2 ** 20).toFixed(1)} MiB`);
}
