/**
 * Building a rank's shard of a model and assembling the full model from the shards.
 *
 * The shard is the one definition of the model (nn/models/gpt2.ts, bert.ts, llama.ts) with the split
 * projections swapped in (nn/layers/projections.ts). Its values come from the full model built from
 * the same seed, so T ranks start exactly where one process does. That full model lives only while
 * the shard is filled (the peak of construction is one full model); from then on a rank holds its
 * shard only. An initialisation drawn parameter by parameter (no full model at any time) needs nn's
 * initialisers to draw per parameter, which would change every model's initial values: not done here.
 */
import { isSharded, type ShardGroup } from '../../nn/layers/sharded.js';
import { type Projections, shardedProjections } from '../../nn/layers/projections.js';
import { BertForMaskedLM } from '../../nn/models/bert.js';
import { Gpt2LMHead } from '../../nn/models/gpt2.js';
import { LlamaForCausalLM } from '../../nn/models/llama.js';
import { type ModelSpec, createModel } from '../../nn/models/index.js';
import type { Module } from '../../nn/module.js';
import { checkTensorParallel } from './check.js';
import { type ShardLayout, type ShardRule, assembleShards, shardShape, sliceShard } from './shard_rule.js';

/** Which parameters of a tensor-parallel model are split, and how (the rest are replicated). */
export function shardLayout(model: Module): ShardLayout {
  const layout = new Map<string, ShardRule>();
  for (const [path, m] of model.namedModules()) {
    if (!isSharded(m)) continue;
    for (const [name, rule] of m.shardRules()) layout.set(path ? `${path}.${name}` : name, rule);
  }
  return layout;
}

/** A GPT-2, BERT or Llama-family model: its one definition with the projections split over `group`. */
export type TensorParallelModel = Gpt2LMHead | BertForMaskedLM | LlamaForCausalLM;

export function isTensorParallelModel(model: Module): model is TensorParallelModel {
  return model instanceof Gpt2LMHead || model instanceof BertForMaskedLM || model instanceof LlamaForCausalLM;
}

/** Rank `group.rank` of `group.size`'s shard of the model `spec` and `seed` describe. */
export function buildTensorParallelModel(spec: ModelSpec, seed: number, group: ShardGroup, modelName?: string): TensorParallelModel {
  checkTensorParallel(spec, group.size, modelName);
  if (group.rank < 0 || group.rank >= group.size) throw new Error(`tensor parallel: rank ${group.rank} is not in a group of ${group.size}`);
  const split = shardedProjections(group);
  const shard = shardOf(spec, seed, split);
  loadShard(shard, createModel(spec, seed), group.rank, group.size);
  return shard;
}

function shardOf(spec: ModelSpec, seed: number, split: Projections): TensorParallelModel {
  switch (spec.type) {
    case 'gpt2': return new Gpt2LMHead(spec, seed, split);
    case 'bert': return new BertForMaskedLM(spec, seed, split);
    case 'llama': return new LlamaForCausalLM(spec, seed, split);
    default: throw new Error(`tensor parallel: no sharded ${spec.type} model`);
  }
}

/** Copies each parameter's shard (or the whole of a replicated one) from the full model, by name. */
export function loadShard(shard: Module, full: Module, rank: number, size: number): void {
  const layout = shardLayout(shard);
  const fullParams = new Map(full.namedParameters());
  for (const [name, p] of shard.namedParameters()) {
    const source = fullParams.get(name);
    if (!source) throw new Error(`tensor parallel: the full model has no parameter ${name}`);
    const rule = layout.get(name);
    const expected = rule ? shardShape(source.shape, rule, size) : [...source.shape];
    if (expected.join('x') !== p.shape.join('x')) throw new Error(`tensor parallel: ${name} is [${p.shape.join(', ')}] here, [${expected.join(', ')}] expected from the full [${source.shape.join(', ')}]`);
    const values = source.values() as Float32Array;
    p.storage.write(rule ? sliceShard(values, source.shape, rule, rank, size) : values);
  }
  if (fullParams.size !== shard.namedParameters().length) throw new Error(`tensor parallel: the full model has ${fullParams.size} parameters, the shard ${shard.namedParameters().length}`);
}

/**
 * The full model's values (parameters, or with `grads` their gradients) from every rank's shard
 * (rank-major), by parameter name; replicated parameters are taken from rank 0.
 */
export function assembleFull(shards: readonly Module[], grads = false): Map<string, { shape: number[]; values: Float32Array }> {
  const layout = shardLayout(shards[0]);
  const perRank = shards.map((m) => m.namedParameters());
  const out = new Map<string, { shape: number[]; values: Float32Array }>();
  perRank[0].forEach(([name, p], i) => {
    const pick = (r: number): Float32Array => {
      const t = perRank[r][i][1];
      return (grads ? t.gradValues() ?? new Float32Array(t.size) : t.values()) as Float32Array;
    };
    const rule = layout.get(name);
    if (!rule) {
      out.set(name, { shape: [...p.shape], values: Float32Array.from(pick(0)) });
      return;
    }
    const shape = [...p.shape];
    shape[rule.dim] *= shards.length;
    out.set(name, { shape, values: assembleShards(shards.map((_, r) => pick(r)), shape, rule) });
  });
  return out;
}
