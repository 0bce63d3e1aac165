/** Shape arithmetic shared by the ops: sizes, strides, broadcasting. */

export class ShapeError extends Error {
  constructor(op: string, detail: string, shapes: readonly (readonly number[])[]) {
    super(`${op}: ${detail} (shapes ${shapes.map(fmtShape).join(', ')})`);
    this.name = 'ShapeError';
  }
}

export function fmtShape(shape: readonly number[]): string {
  return `[${shape.join(', ')}]`;
}

export function sizeOf(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

/** Row-major contiguous strides. */
export function stridesOf(shape: readonly number[]): number[] {
  const s = new Array<number>(shape.length);
  let acc = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    s[i] = acc;
    acc *= shape[i];
  }
  return s;
}

/** numpy broadcasting of two shapes; throws a ShapeError naming the op. */
export function broadcastShapes(op: string, a: readonly number[], b: readonly number[]): number[] {
  const nd = Math.max(a.length, b.length);
  const out = new Array<number>(nd);
  for (let i = 0; i < nd; i++) {
    const da = a[a.length - nd + i] ?? 1;
    const db = b[b.length - nd + i] ?? 1;
    if (da !== db && da !== 1 && db !== 1) throw new ShapeError(op, 'shapes cannot be broadcast together', [a, b]);
    out[i] = da === 1 ? db : da;
  }
  return out;
}

/** Strides of `shape` seen through broadcasting to `outShape` (0 on broadcast dimensions). */
export function broadcastStrides(shape: readonly number[], outShape: readonly number[]): number[] {
  const own = stridesOf(shape);
  const off = outShape.length - shape.length;
  return outShape.map((d, i) => (i < off || shape[i - off] === 1 ? 0 : own[i - off]));
}

/** Resolves a possibly negative axis; throws naming the op. */
export function normAxis(op: string, axis: number, ndim: number, shape: readonly number[]): number {
  const a = axis < 0 ? axis + ndim : axis;
  if (a < 0 || a >= ndim) throw new ShapeError(op, `axis ${axis} out of range for ${ndim}-d tensor`, [shape]);
  return a;
}

export function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}
