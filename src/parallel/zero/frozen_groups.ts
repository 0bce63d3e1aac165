/**
 * ZeRO-3's frozen parameters cut into shards and layer groups (frozen_shards.ts): the float32 ones
 * in one layout, the weights held in bf16 (`--lora-base-dtype bf16`: LoRA's adapted base weights)
 * in another, each grouped by the layers that read them, as the trained layout is (layer_groups.ts).
 */
import type { ProcessGroup } from '../../comm/process_group.js';
import type { ModelLayer } from '../../nn/layer_list.js';
import type { Module } from '../../nn/module.js';
import type { Device } from '../../tensor/storage.js';
import { FrozenShards } from './frozen_shards.js';
import { layerGroups } from './layer_groups.js';
import type { ParameterValues } from './sharded_model.js';
import type { FrozenGroups } from './staged_step.js';

/**
 * Shards every frozen parameter of `model` for this rank (their tensors released from now on), the
 * ones named in `inBf16` as bfloat16; returns each non-empty layout with its groups over `layers`.
 */
export async function shardFrozen(
  model: Module, group: ProcessGroup, device: Device, values: ParameterValues, layers: readonly ModelLayer[], inBf16: ReadonlySet<string>,
): Promise<FrozenGroups[]> {
  const parts = [
    await FrozenShards.build(model, group, device, values, 'float32', (name) => !inBf16.has(name)),
    await FrozenShards.build(model, group, device, values, 'bfloat16', (name) => inBf16.has(name)),
  ];
  return parts.filter((shards) => !shards.empty).map((shards) => ({ shards, ...layerGroups(layers, shards.layout, (tied) => !shards.holds(tied)) }));
}
