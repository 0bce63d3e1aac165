import type { Buf, Conv2dGeometry } from '../../backend.js';
import { gemm } from './gemm.js';

/**
 * Convolution as im2col + GEMM, one image at a time: the column matrix is [inC·kH·kW, outH·outW],
 * so y_n = W[outC, inC·kH·kW] @ cols_n.
 */
function im2col(g: Conv2dGeometry, x: Buf, xOff: number, cols: Buf): void {
  const ohw = g.outH * g.outW;
  let row = 0;
  for (let c = 0; c < g.inC; c++) {
    const plane = xOff + c * g.inH * g.inW;
    for (let ky = 0; ky < g.kH; ky++) {
      for (let kx = 0; kx < g.kW; kx++, row++) {
        const base = row * ohw;
        for (let oy = 0; oy < g.outH; oy++) {
          const iy = oy * g.strideH - g.padH + ky;
          const dst = base + oy * g.outW;
          if (iy < 0 || iy >= g.inH) {
            cols.fill(0, dst, dst + g.outW);
            continue;
          }
          const srcRow = plane + iy * g.inW;
          for (let ox = 0; ox < g.outW; ox++) {
            const ix = ox * g.strideW - g.padW + kx;
            cols[dst + ox] = ix >= 0 && ix < g.inW ? x[srcRow + ix] : 0;
          }
        }
      }
    }
  }
}

/** The adjoint of im2col: scatters (adds) columns back into the image gradient. */
function col2im(g: Conv2dGeometry, cols: Buf, gx: Buf, xOff: number): void {
  const ohw = g.outH * g.outW;
  let row = 0;
  for (let c = 0; c < g.inC; c++) {
    const plane = xOff + c * g.inH * g.inW;
    for (let ky = 0; ky < g.kH; ky++) {
      for (let kx = 0; kx < g.kW; kx++, row++) {
        const base = row * ohw;
        for (let oy = 0; oy < g.outH; oy++) {
          const iy = oy * g.strideH - g.padH + ky;
          if (iy < 0 || iy >= g.inH) continue;
          const dstRow = plane + iy * g.inW;
          const src = base + oy * g.outW;
          for (let ox = 0; ox < g.outW; ox++) {
            const ix = ox * g.strideW - g.padW + kx;
            if (ix >= 0 && ix < g.inW) gx[dstRow + ix] += cols[src + ox];
          }
        }
      }
    }
  }
}

function newLike(x: Buf, n: number): Buf {
  return x instanceof Float64Array ? new Float64Array(n) : new Float32Array(n);
}

export function conv2d(g: Conv2dGeometry, x: Buf, w: Buf, bias: Buf | null, y: Buf): void {
  const kdim = g.inC * g.kH * g.kW;
  const ohw = g.outH * g.outW;
  const cols = newLike(x, kdim * ohw);
  for (let n = 0; n < g.batch; n++) {
    im2col(g, x, n * g.inC * g.inH * g.inW, cols);
    const yOff = n * g.outC * ohw;
    const yn = y.subarray(yOff, yOff + g.outC * ohw);
    gemm(false, false, g.outC, ohw, kdim, 1, w, 0, cols, 0, 0, yn, 0, 1);
    if (bias) for (let c = 0; c < g.outC; c++) for (let i = 0; i < ohw; i++) yn[c * ohw + i] += bias[c];
  }
}

export function conv2dBackward(
  g: Conv2dGeometry, x: Buf, w: Buf, gy: Buf, gx: Buf | null, gw: Buf, gBias: Buf | null, setGx = false,
): void {
  if (gx && setGx) gx.fill(0);
  const kdim = g.inC * g.kH * g.kW;
  const ohw = g.outH * g.outW;
  const cols = newLike(x, kdim * ohw);
  for (let n = 0; n < g.batch; n++) {
    const gyn = gy.subarray(n * g.outC * ohw, (n + 1) * g.outC * ohw);
    im2col(g, x, n * g.inC * g.inH * g.inW, cols);
    gemm(false, true, g.outC, kdim, ohw, 1, gyn, 0, cols, 0, 1, gw, 0, 1);
    if (gBias) for (let c = 0; c < g.outC; c++) for (let i = 0; i < ohw; i++) gBias[c] += gyn[c * ohw + i];
    if (gx) {
      gemm(true, false, kdim, ohw, g.outC, 1, w, 0, gyn, 0, 0, cols, 0, 1);
      col2im(g, cols, gx, n * g.inC * g.inH * g.inW);
    }
  }
}
