/**
 * The whole model on rank 0 for the final --save, when each rank holds a part of it under the whole
 * model's names: a pipeline stage's layers, a tensor-parallel shard of each split parameter (cut by
 * its ShardRule), or both. Every other rank sends rank 0 what it holds, in rank order: the byte
 * length of a JSON list of its parts, the list, then their values in its order. A rank whose values
 * another rank already sends (a later data-parallel replica) sends an empty list. Rank 0 fills a
 * model built from the spec: a replicated tensor from the first rank that holds it, a split one
 * assembled once every shard of it has come.
 */
import type { ProcessGroup } from '../../comm/process_group.js';
import { type ModelSpec, createModel } from '../../nn/models/index.js';
import type { Module } from '../../nn/module.js';
import { type ShardLayout, type ShardRule, assembleShards } from '../../parallel/sharding/shard_rule.js';
import type { Storage } from '../../tensor/storage.js';
import { fromBf16BitsArray } from '../../util/float_formats.js';

/** What a rank holds of the whole model. */
export interface HeldPart {
  model: Module;
  /** False: another rank sends the same values (this rank's replica is not the first). */
  sends: boolean;
  /** Rank 0's empty whole model (default the spec's plain model): a fine-tuned run's carries its adapters. */
  build?: () => Module;
  /** Tensor parallel: this rank's place in its group and the rules of the split parameters. */
  tp?: { rank: number; size: number; rules: ShardLayout };
  /** Only the trained parameters travel and are filled (a frozen quantized base no rank holds whole stays out of rank 0's model). */
  trainedOnly?: boolean;
}

interface PartRecord {
  name: string;
  size: number;
  /** A tensor-parallel shard: whose, of how many, cut how (absent: the whole tensor). */
  shard?: { rank: number; size: number; rule: ShardRule };
}

/** Rank 0: the whole model, every value from the rank that holds it; other ranks: null after sending. */
export async function gatherWholeModel(group: ProcessGroup, spec: ModelSpec, part: HeldPart): Promise<Module | null> {
  const held = part.sends ? heldStorages(part) : [];
  const records = held.map(([rec]) => rec);
  const values = await Promise.all(held.map(([, s]) => float32Values(s)));
  if (group.rank !== 0) {
    const list = Buffer.from(JSON.stringify(records), 'utf8');
    await group.send(Uint32Array.of(list.length), 0);
    await group.send(list, 0);
    if (records.length > 0) await group.send(concat(values), 0);
    return null;
  }
  const whole = new Assembly(part.build ? part.build() : createModel(spec, 0), part.trainedOnly === true);
  records.forEach((rec, i) => whole.take(rec, values[i]));
  for (let r = 1; r < group.size; r++) {
    const length = (await group.recv(new Uint32Array(1), r))[0];
    const list = JSON.parse(Buffer.from((await group.recv(new Uint8Array(length), r)).buffer).toString('utf8')) as PartRecord[];
    if (list.length === 0) continue;
    const all = await group.recv(new Float32Array(list.reduce((n, rec) => n + rec.size, 0)), r);
    let at = 0;
    for (const rec of list) whole.take(rec, all.subarray(at, (at += rec.size)));
  }
  return whole.finish();
}

/** The parameters a whole model carries: every one, or (trainedOnly: LoRA's adapters) those that train. */
function carriedParameters(model: Module, trainedOnly: boolean): ReturnType<Module['namedParameters']> {
  return model.namedParameters().filter(([, p]) => !trainedOnly || p.requiresGrad);
}

/** The part's parameters and buffers with their records. */
function heldStorages(part: HeldPart): Array<[PartRecord, Storage]> {
  const rules = part.tp?.rules;
  const params = carriedParameters(part.model, part.trainedOnly === true).map(([name, p]): [PartRecord, Storage] => [
    { name, size: p.size, ...(rules?.has(name) ? { shard: { rank: part.tp!.rank, size: part.tp!.size, rule: rules.get(name)! } } : {}) }, p.storage,
  ]);
  const buffers = part.trainedOnly ? [] : part.model.namedBufferStorages().map(([name, b]): [PartRecord, Storage] => [{ name, size: b.size }, b]);
  return [...params, ...buffers];
}

/**
 * A storage's values as float32, what the wire and the whole model carry: a bf16 one (LoRA's base
 * under --lora-base-dtype bf16) widened exactly (its bits are float32's top half).
 */
async function float32Values(storage: Storage): Promise<Float32Array> {
  const values = await storage.read();
  if (values instanceof Float32Array) return values;
  if (!(values instanceof Uint16Array)) throw new Error(`--save: a ${storage.dtype} tensor cannot be gathered as float32`);
  return fromBf16BitsArray(values);
}

function concat(arrays: Float32Array[]): Float32Array {
  const out = new Float32Array(arrays.reduce((n, a) => n + a.length, 0));
  let at = 0;
  for (const a of arrays) out.set(a, (at += a.length) - a.length);
  return out;
}

/** Rank 0's whole model being filled. */
class Assembly {
  private readonly params: Map<string, Storage>;
  private readonly shapes: Map<string, readonly number[]>;
  private readonly filled = new Set<string>();
  private readonly shards = new Map<string, Float32Array[]>();

  constructor(private readonly model: Module, trainedOnly: boolean) {
    const named = carriedParameters(model, trainedOnly);
    this.params = new Map<string, Storage>([...named.map(([n, p]): [string, Storage] => [n, p.storage]), ...(trainedOnly ? [] : model.namedBufferStorages())]);
    this.shapes = new Map(named.map(([n, p]) => [n, p.shape]));
  }

  take(rec: PartRecord, values: Float32Array): void {
    const target = this.params.get(rec.name);
    if (!target) throw new Error(`--save: a rank holds ${rec.name}, which the whole model does not have`);
    if (this.filled.has(rec.name)) return;
    if (!rec.shard) {
      target.write(values);
      this.filled.add(rec.name);
      return;
    }
    const { rank, size, rule } = rec.shard;
    const shards = this.shards.get(rec.name) ?? new Array<Float32Array>(size);
    shards[rank] ??= Float32Array.from(values);
    this.shards.set(rec.name, shards);
    if (shards.filter(Boolean).length < size) return;
    target.write(assembleShards(shards, this.shapes.get(rec.name)!, rule));
    this.filled.add(rec.name);
    this.shards.delete(rec.name);
  }

  finish(): Module {
    const missing = [...this.params.keys()].filter((n) => !this.filled.has(n));
    if (missing.length > 0) throw new Error(`--save: no rank sent ${missing.slice(0, 3).join(', ')}${missing.length > 3 ? ', ...' : ''} of the whole model`);
    return this.model;
  }
}
