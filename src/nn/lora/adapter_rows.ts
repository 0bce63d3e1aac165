/**
 * Which LoRA adapter each row of a batched forward runs (`serve --lora-modules NAME=DIR`,
 * several adapters over one base): set around one synchronous forward by the decode batch, read by every
 * AdaptersLinear layer (adapters_linear.ts). Rows are the batch's first dimension; consecutive rows
 * of one adapter make one range, so each range's update is one product per layer.
 */

/** Rows [start, end) of the batch run `adapter` (null: the base alone). */
export interface AdapterRange {
  readonly start: number;
  readonly end: number;
  readonly adapter: string | null;
}

let current: readonly AdapterRange[] | null = null;

/** The ranges of the forward running now, or null (every row the base alone). */
export function adapterRanges(): readonly AdapterRange[] | null {
  return current;
}

/** `adapters[i]` for row i, as ranges of consecutive rows that share one. */
export function rangesOf(adapters: readonly (string | null)[]): AdapterRange[] {
  const out: AdapterRange[] = [];
  adapters.forEach((adapter, row) => {
    const last = out[out.length - 1];
    if (last && last.adapter === adapter) out[out.length - 1] = { ...last, end: row + 1 };
    else out.push({ start: row, end: row + 1, adapter });
  });
  return out;
}

/** Runs fn (one forward, synchronous) with row i on `adapters[i]`. */
export function withAdapterRows<T>(adapters: readonly (string | null)[], fn: () => T): T {
  const outer = current;
  current = adapters.some((a) => a !== null) ? rangesOf(adapters) : null;
  try {
    return fn();
  } finally {
    current = outer;
  }
}
