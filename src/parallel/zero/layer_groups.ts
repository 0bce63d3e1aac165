/**
 * ZeRO-3's layer groups: the unit whose parameters are gathered together. One group per module a
 * forward stage names (nn/stages.ts): for GPT-2 the token and position embeddings, each
 * transformer block and the final norm; for an MLP each linear layer. A group is the contiguous
 * range of arena entries under its module. Which stages read a group decides how long it stays
 * gathered (staged_step.ts).
 */
import type { ArenaEntry } from '../../nn/arena.js';
import type { ForwardStage } from '../../nn/stages.js';

export interface LayerGroup {
  module: string;
  /** First and last arena entry (inclusive). */
  first: number;
  last: number;
  /** Stages that read it, ascending. */
  stages: number[];
}

/** The groups of `stages` over `layout`; every parameter must belong to exactly one stage's module. */
export function layerGroups(stages: readonly ForwardStage[], layout: readonly ArenaEntry[]): { groups: LayerGroup[]; byStage: number[][] } {
  const groups: LayerGroup[] = [];
  const index = new Map<string, number>();
  const byStage = stages.map((stage, s) => {
    const mine: number[] = [];
    for (const module of stage.modules) {
      let g = index.get(module);
      if (g === undefined) {
        const hits = layout.map((e, i) => (e.name.startsWith(`${module}.`) ? i : -1)).filter((i) => i >= 0);
        if (hits.length === 0) continue; // a module without parameters (an activation)
        const [first, last] = [hits[0], hits[hits.length - 1]];
        if (last - first + 1 !== hits.length) throw new Error(`ZeRO-3: the parameters of ${module} are not contiguous in the arena`);
        g = groups.push({ module, first, last, stages: [] }) - 1;
        index.set(module, g);
      }
      if (!groups[g].stages.includes(s)) groups[g].stages.push(s);
      mine.push(g);
    }
    return mine;
  });
  const covered = new Set(groups.flatMap((g) => Array.from({ length: g.last - g.first + 1 }, (_, k) => g.first + k)));
  const missing = layout.filter((_, i) => !covered.has(i)).map((e) => e.name);
  if (missing.length > 0) throw new Error(`ZeRO-3: no forward stage reads ${missing.slice(0, 3).join(', ')}${missing.length > 3 ? ', ...' : ''}`);
  const seen = new Set<number>();
  for (const g of groups) {
    for (let i = g.first; i <= g.last; i++) {
      if (seen.has(i)) throw new Error(`ZeRO-3: ${layout[i].name} belongs to two layer groups`);
      seen.add(i);
    }
  }
  return { groups, byStage };
}
