import type { Buf, Pool2dGeometry } from '../../backend.js';

/** Calls fn(outIndex, inputPlaneOffset, y0, y1, x0, x1) for every output cell; bounds clipped to the image. */
function forEachWindow(
  g: Pool2dGeometry,
  fn: (o: number, plane: number, y0: number, y1: number, x0: number, x1: number) => void,
): void {
  let o = 0;
  for (let p = 0; p < g.batch * g.channels; p++) {
    const plane = p * g.inH * g.inW;
    for (let oy = 0; oy < g.outH; oy++) {
      const ys = oy * g.strideH - g.padH;
      const y0 = Math.max(ys, 0);
      const y1 = Math.min(ys + g.kH, g.inH);
      for (let ox = 0; ox < g.outW; ox++, o++) {
        const xs = ox * g.strideW - g.padW;
        fn(o, plane, y0, y1, Math.max(xs, 0), Math.min(xs + g.kW, g.inW));
      }
    }
  }
}

export function maxPool2d(g: Pool2dGeometry, x: Buf, y: Buf, argmax: Int32Array): void {
  maxPoolOf(g, x, y, argmax, false);
}

/** Pooling over relu(x) (relu as the unary kernel: NaN → 0); no gradient where the maximum is 0. */
export function maxPool2dRelu(g: Pool2dGeometry, x: Buf, y: Buf, argmax: Int32Array): void {
  maxPoolOf(g, x, y, argmax, true);
}

function maxPoolOf(g: Pool2dGeometry, x: Buf, y: Buf, argmax: Int32Array, relu: boolean): void {
  forEachWindow(g, (o, plane, y0, y1, x0, x1) => {
    let best = -Infinity;
    let arg = -1;
    for (let iy = y0; iy < y1; iy++) {
      for (let ix = x0; ix < x1; ix++) {
        const raw = x[plane + iy * g.inW + ix];
        const v = relu ? (raw > 0 ? raw : 0) : raw;
        if (v > best || arg < 0) {
          best = v;
          arg = iy * g.inW + ix;
        }
      }
    }
    y[o] = best;
    argmax[o] = relu && !(best > 0) ? -1 : arg;
  });
}

export function maxPool2dBackward(g: Pool2dGeometry, gy: Buf, argmax: Int32Array, gx: Buf): void {
  const ohw = g.outH * g.outW;
  const ihw = g.inH * g.inW;
  for (let p = 0; p < g.batch * g.channels; p++) {
    for (let i = 0; i < ohw; i++) {
      const a = argmax[p * ohw + i];
      if (a >= 0) gx[p * ihw + a] += gy[p * ohw + i];
    }
  }
}

export function maxPool2dBackwardSet(g: Pool2dGeometry, gy: Buf, argmax: Int32Array, gx: Buf): void {
  gx.fill(0);
  maxPool2dBackward(g, gy, argmax, gx);
}

/** count_include_pad: the divisor is the full kernel area (clipped only at the padded border's far side). */
function divisor(g: Pool2dGeometry, oy: number, ox: number): number {
  const ys = oy * g.strideH - g.padH;
  const xs = ox * g.strideW - g.padW;
  const ye = Math.min(ys + g.kH, g.inH + g.padH);
  const xe = Math.min(xs + g.kW, g.inW + g.padW);
  return (ye - ys) * (xe - xs);
}

export function avgPool2d(g: Pool2dGeometry, x: Buf, y: Buf): void {
  const ohw = g.outH * g.outW;
  forEachWindow(g, (o, plane, y0, y1, x0, x1) => {
    let s = 0;
    for (let iy = y0; iy < y1; iy++) for (let ix = x0; ix < x1; ix++) s += x[plane + iy * g.inW + ix];
    const cell = o % ohw;
    y[o] = s / divisor(g, Math.floor(cell / g.outW), cell % g.outW);
  });
}

export function avgPool2dBackward(g: Pool2dGeometry, gy: Buf, gx: Buf): void {
  const ohw = g.outH * g.outW;
  forEachWindow(g, (o, plane, y0, y1, x0, x1) => {
    const cell = o % ohw;
    const share = gy[o] / divisor(g, Math.floor(cell / g.outW), cell % g.outW);
    for (let iy = y0; iy < y1; iy++) for (let ix = x0; ix < x1; ix++) gx[plane + iy * g.inW + ix] += share;
  });
}
