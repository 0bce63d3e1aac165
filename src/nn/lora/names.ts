/**
 * How LoRA adapters' tensors are named: ours by the wrapped module (`<module>.lora_A.weight`, the
 * names PEFT's layers give them), and in a PEFT adapter file under the PeftModel's prefix
 * (`base_model.model.<module>.lora_A.weight`, the adapter's name "default" left out as PEFT saves).
 */

/** Whether a parameter belongs to a LoRA adapter (trained, saved in the adapter folder). */
export function isAdapterParameter(name: string): boolean {
  return /(^|\.)lora_[AB]\.weight$/.test(name);
}

const PEFT_PREFIX = 'base_model.model.';

/** The PEFT file's name of a module's A or B matrix. */
export function peftTensorName(module: string, which: 'A' | 'B'): string {
  return `${PEFT_PREFIX}${module}.lora_${which}.weight`;
}

/** The module and matrix a PEFT file's tensor name holds, or null for a name of another kind. */
export function parsePeftTensorName(name: string): { module: string; which: 'A' | 'B' } | null {
  const m = /^base_model\.model\.(.+)\.lora_([AB])(?:\.default)?\.weight$/.exec(name);
  return m ? { module: m[1], which: m[2] as 'A' | 'B' } : null;
}
