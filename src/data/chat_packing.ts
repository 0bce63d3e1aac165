/**
 * Packed chat windows (`--packing`; TRL's `packing=True`, its default "bfd" strategy, padding-free):
 * examples are placed into windows of T tokens by best-fit decreasing — longest first, each into
 * the open window with the least room that still holds it (the window that came to that room first),
 * else a new one — cut to T when longer (keep_start), as TRL's `pack_dataset`. A window's examples
 * follow each other in the order they were placed; the rest of the window is pad tokens.
 *
 * Each token carries its position in its own example (0 where an example begins; the pad tail counts
 * from 0 as a sequence of its own), which the model reads to rotate or embed positions and to keep
 * attention inside each example (nn/layers/packed_sequences.ts). Labels are the next token within the
 * example where it is learned, -100 elsewhere: an example's last token never predicts the next one's
 * first (TRL's labels at position id 0 are -100).
 */
import type { ChatTokens } from './chat_tokens.js';
import { IGNORE_INDEX, type TokenDataset } from './dataset.js';

/** The examples' indices per window, in placing order (TRL's _pack_bfd, each example's length capped at T). */
export function bestFitDecreasing(lengths: readonly number[], T: number): number[][] {
  const order = lengths.map((n, i) => [Math.min(n, T), i] as const).filter(([n]) => n > 0).sort((a, b) => b[0] - a[0] || a[1] - b[1]);
  const bins: number[][] = [];
  // Windows by the room left in them, each list in the order the windows came to that room.
  const byRoom = new Map<number, number[]>();
  for (const [n, i] of order) {
    let best = T;
    for (const [room, open] of byRoom) if (room >= n && room < best && open.length > 0) best = room;
    const bin = best < T ? byRoom.get(best)!.shift()! : bins.push([]) - 1;
    bins[bin].push(i);
    const room = best - n;
    if (!byRoom.has(room)) byRoom.set(room, []);
    byRoom.get(room)!.push(bin);
  }
  return bins;
}

/** Packed windows of T tokens (see the file's comment): inputs, labels and position ids. */
export function packedChatWindows(examples: readonly ChatTokens[], T: number, pad: number, vocabSize: number, name: string): TokenDataset {
  const bins = bestFitDecreasing(examples.map((c) => c.ids.length), T);
  const inputs = new Int32Array(bins.length * T).fill(pad);
  const labels = new Int32Array(bins.length * T).fill(IGNORE_INDEX);
  const positions = new Int32Array(bins.length * T);
  bins.forEach((bin, w) => {
    let at = w * T;
    for (const i of bin) {
      const { ids, learned } = examples[i];
      const n = Math.min(T, ids.length);
      inputs.set(ids.subarray(0, n), at);
      for (let t = 0; t < n; t++) {
        positions[at + t] = t;
        if (t + 1 < n && learned[t + 1]) labels[at + t] = ids[t + 1];
      }
      at += n;
    }
    for (let t = 0; at + t < (w + 1) * T; t++) positions[at + t] = t;
  });
  return { task: 'language-model', name, size: bins.length, inputShape: [T], inputs, labels, vocabSize, positions };
}
