/**
 * The adapters a LoRA run's training checkpoint holds. Such a run's arena is its adapters only (the
 * frozen base stays out of it: nn/lora/apply.ts), so its checkpoints hold each adapted module's A
 * and B under our names (`<module>.lora_A.weight`), and the base is the run's --init. Read as
 * AdapterWeights, they merge into (or load onto) the base as a PEFT folder's do.
 */
import { type CheckpointFileHeader, CheckpointError, readModelHeader } from '../checkpoint.js';
import type { SafeTensor } from '../interchange/safetensors.js';
import type { AdapterWeights } from './peft.js';

const ADAPTER_PARAM = /^(.+)\.lora_([AB])\.weight$/;
/** Strategy records of a rank that holds part of the model (train/strategies: zero.ts, pipeline.ts): its file is not the whole adapter. */
const PART_RECORDS: Readonly<Record<string, string>> = { 'zero.shard': 'a ZeRO shard', 'pipeline.stage': 'a pipeline stage' };

/** Whether a checkpoint's parameters are LoRA adapters only (read from its header). */
export function holdsAdaptersOnly(params: readonly { name: string }[]): boolean {
  return params.length > 0 && params.every((p) => ADAPTER_PARAM.test(p.name));
}

/**
 * The A and B pairs of a LoRA run's checkpoint (or model file), scaled by `alpha` / r (the run's
 * --lora-alpha; default 2r, as training's). A file of other parameters is refused by name.
 */
export function readCheckpointAdapter(file: string, alpha?: number): AdapterWeights {
  const { header, data, dataStart } = readModelHeader(file);
  if (!holdsAdaptersOnly(header.params)) throw new CheckpointError(file, 'holds no LoRA adapters (its parameters are not lora_A / lora_B pairs only)');
  const part = ((header as Partial<CheckpointFileHeader>).extra ?? []).find((r) => Object.hasOwn(PART_RECORDS, r.name));
  if (part) throw new CheckpointError(file, `holds one rank's part of the adapters (${PART_RECORDS[part.name]}), not all of them: use the adapter folder the run saves (--save DIR)`);
  const parts = new Map<string, { a?: SafeTensor; b?: SafeTensor }>();
  for (const p of header.params) {
    const [, module, which] = ADAPTER_PARAM.exec(p.name)!;
    const floats = p.shape.reduce((n, d) => n * d, 1);
    const start = dataStart + p.offset * 4;
    if (start + floats * 4 > data.length) throw new CheckpointError(file, `truncated: ${p.name} runs past the end of the file`);
    const entry = parts.get(module) ?? {};
    entry[which === 'A' ? 'a' : 'b'] = { dtype: 'F32', shape: [...p.shape], bytes: data.subarray(start, start + floats * 4) };
    parts.set(module, entry);
  }
  const tensors = new Map<string, { a: SafeTensor; b: SafeTensor }>();
  for (const [module, { a, b }] of parts) {
    if (!a || !b) throw new CheckpointError(file, `${module} has lora_${a ? 'B' : 'A'} missing`);
    if (a.shape.length !== 2 || b.shape.length !== 2 || a.shape[0] !== b.shape[1]) throw new CheckpointError(file, `${module}: lora_A [${a.shape}] and lora_B [${b.shape}] do not make a rank-r pair`);
    tensors.set(module, { a, b });
  }
  const ranks = new Set([...tensors.values()].map(({ a }) => a.shape[0]));
  if (ranks.size !== 1) throw new CheckpointError(file, `its adapters have ranks ${[...ranks].join(', ')}; a LoRA run trains one rank`);
  const [rank] = ranks;
  return { file, config: { rank, alpha: alpha ?? 2 * rank, dropout: 0, targets: [...tensors.keys()] }, tensors };
}
