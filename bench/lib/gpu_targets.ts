/**
 * Issue 21 §5's targets and how bench:gpu-models reads a row against them: ours / PyTorch on the
 * same GPU for training throughput, GEMM GFLOP/s / the measured fp32 peak for matmul. A row with a
 * side that did not run (no torch GPU, a child that failed, a software adapter) gets no verdict.
 */

/** Minimum ours / PyTorch throughput per workload id (none for gpt2-tiny: the issue names no target). */
export const THROUGHPUT_TARGETS: Readonly<Record<string, number>> = { mlp: 1.5, cnn: 1.5, resnet18: 0.7, gpt2: 0.7 };

/** Minimum share of the measured fp32 peak the GEMM reaches at 4096³. */
export const GEMM_PEAK_TARGET = { n: 4096, share: 0.5 };

/** What a child printed as its last line: a report, PyTorch's word that it has no GPU, or a failure. */
export type ChildAnswer<R> = { ok: R } | { noGpu: string } | { failed: string };

/** Reads a child's stdout (its last line is JSON) and exit status into an answer. */
export function readChildAnswer<R>(stdout: string, stderr: string, status: number | null): ChildAnswer<R> {
  const last = stdout.trim().split('\n').pop() ?? '';
  let parsed: unknown;
  try {
    parsed = JSON.parse(last);
  } catch {
    const tail = (stderr || stdout).trim().split('\n').slice(-3).join(' | ');
    return { failed: `exit ${status}: ${tail || 'no output'}` };
  }
  if (parsed && typeof parsed === 'object' && typeof (parsed as { noGpu?: unknown }).noGpu === 'string') return { noGpu: (parsed as { noGpu: string }).noGpu };
  return { ok: parsed as R };
}

/** The text of a cell for one side: its figure, or why there is none. */
export function cell<R>(a: ChildAnswer<R>, figure: (r: R) => string): string {
  if ('ok' in a) return figure(a.ok);
  return 'noGpu' in a ? a.noGpu : a.failed;
}

/**
 * The verdict of a measured value against a minimum: 'met' / 'missed', or why no verdict
 * ('no target', 'software adapter', 'not measured').
 */
export function verdict(value: number | null, target: number | undefined, software: boolean): string {
  if (target === undefined) return 'no target';
  if (software) return 'software adapter: no verdict';
  if (value === null || !Number.isFinite(value)) return 'not measured';
  return value >= target ? `met (≥ ${target})` : `missed (< ${target})`;
}

/** ours / PyTorch, or null when either side has no figure. */
export function ratioOf<R>(ours: ChildAnswer<R>, torch: ChildAnswer<R>, figure: (r: R) => number): number | null {
  if (!('ok' in ours) || !('ok' in torch)) return null;
  const b = figure(torch.ok);
  return b > 0 ? figure(ours.ok) / b : null;
}
