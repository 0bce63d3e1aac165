/**
 * ZeRO-3's layer groups: the unit whose parameters are gathered together. One group per module with
 * parameters that a layer of the model's layer list (nn/layer_list.ts) owns: for GPT-2 the token and
 * position embeddings, each transformer block and the final norm; for BERT the embeddings, each
 * encoder layer and the MLM head; for an MLP each linear layer. A group is the contiguous range of
 * arena entries under its module. A layer that reads a tied weight reads the group holding it too.
 * Which layers read a group decides how long it stays gathered (staged_step.ts).
 */
import type { ArenaEntry } from '../../nn/arena.js';
import type { ModelLayer } from '../../nn/layer_list.js';
import type { Tensor } from '../../tensor/tensor.js';

export interface LayerGroup {
  module: string;
  /** First and last arena entry (inclusive). */
  first: number;
  last: number;
  /** Layers (stages) that read it, ascending. */
  stages: number[];
}

/**
 * The groups of `layers` over `layout`; every parameter must belong to exactly one layer's module.
 * `tiedElsewhere`: whether a layer's tied weight lives outside this layout (default: a frozen one,
 * outside the trained layout; the frozen layout (frozen_shards.ts) passes the opposite).
 */
export function layerGroups(
  layers: readonly ModelLayer[], layout: readonly Pick<ArenaEntry, 'name'>[], tiedElsewhere: (tied: Tensor) => boolean = (t) => !t.requiresGrad,
): { groups: LayerGroup[]; byStage: number[][] } {
  const groups: LayerGroup[] = [];
  const index = new Map<string, number>();
  const groupOf = (module: string): number | undefined => {
    let g = index.get(module);
    if (g !== undefined) return g;
    const hits = layout.map((e, i) => (e.name.startsWith(`${module}.`) ? i : -1)).filter((i) => i >= 0);
    if (hits.length === 0) return undefined; // a module without parameters (an activation, a dropout)
    const [first, last] = [hits[0], hits[hits.length - 1]];
    if (last - first + 1 !== hits.length) throw new Error(`ZeRO-3: the parameters of ${module} are not contiguous in the arena`);
    g = groups.push({ module, first, last, stages: [] }) - 1;
    index.set(module, g);
    return g;
  };
  const byStage = layers.map((layer, s) => {
    const mine: number[] = [];
    const read = (g: number | undefined): void => {
      if (g === undefined || mine.includes(g)) return;
      if (!groups[g].stages.includes(s)) groups[g].stages.push(s);
      mine.push(g);
    };
    for (const [module] of layer.modules) read(groupOf(module));
    if (layer.tied && !tiedElsewhere(layer.tied.tensor)) read(tiedGroup(layer, groups, layout));
    return mine;
  });
  const covered = new Set(groups.flatMap((g) => Array.from({ length: g.last - g.first + 1 }, (_, k) => g.first + k)));
  const missing = layout.filter((_, i) => !covered.has(i)).map((e) => e.name);
  if (missing.length > 0) throw new Error(`ZeRO-3: no layer of the model's layer list owns ${missing.slice(0, 3).join(', ')}${missing.length > 3 ? ', ...' : ''}`);
  const seen = new Set<number>();
  for (const g of groups) {
    for (let i = g.first; i <= g.last; i++) {
      if (seen.has(i)) throw new Error(`ZeRO-3: ${layout[i].name} belongs to two layer groups`);
      seen.add(i);
    }
  }
  return { groups, byStage };
}

/** The group (made by an earlier layer, its owner) holding the tied weight `layer` reads. */
function tiedGroup(layer: ModelLayer, groups: readonly LayerGroup[], layout: readonly Pick<ArenaEntry, 'name'>[]): number {
  const name = layer.tied!.name;
  const entry = layout.findIndex((e) => e.name === name);
  const g = groups.findIndex((grp) => grp.first <= entry && entry <= grp.last);
  if (entry < 0 || g < 0) throw new Error(`ZeRO-3: layer ${layer.name} reads ${name}, which no earlier layer owns`);
  return g;
}
