// Convolution as im2col + GEMM, one image at a time: the column matrix is [inC·kH·kW, outH·outW],
// so y_n = W[outC, inC·kH·kW] · cols_n. Used when oneDNN is absent (the GEMM is then BLAS or ours).
#include <algorithm>
#include <cstring>
#include <vector>

#include "conv.h"
#include "gemm.h"

namespace sc {
namespace {

void im2col(const ConvGeom& g, const float* x, float* cols) {
  const int64_t ohw = g.outH * g.outW;
  int64_t row = 0;
  for (int64_t c = 0; c < g.inC; c++) {
    const float* plane = x + c * g.inH * g.inW;
    for (int64_t ky = 0; ky < g.kH; ky++) {
      for (int64_t kx = 0; kx < g.kW; kx++, row++) {
        float* base = cols + row * ohw;
        for (int64_t oy = 0; oy < g.outH; oy++) {
          const int64_t iy = oy * g.strideH - g.padH + ky;
          float* dst = base + oy * g.outW;
          if (iy < 0 || iy >= g.inH) {
            std::fill(dst, dst + g.outW, 0.0f);
            continue;
          }
          const float* src = plane + iy * g.inW;
          for (int64_t ox = 0; ox < g.outW; ox++) {
            const int64_t ix = ox * g.strideW - g.padW + kx;
            dst[ox] = ix >= 0 && ix < g.inW ? src[ix] : 0.0f;
          }
        }
      }
    }
  }
}

/** The adjoint of im2col: adds the columns back into the image gradient. */
void col2im(const ConvGeom& g, const float* cols, float* gx) {
  const int64_t ohw = g.outH * g.outW;
  int64_t row = 0;
  for (int64_t c = 0; c < g.inC; c++) {
    float* plane = gx + c * g.inH * g.inW;
    for (int64_t ky = 0; ky < g.kH; ky++) {
      for (int64_t kx = 0; kx < g.kW; kx++, row++) {
        const float* base = cols + row * ohw;
        for (int64_t oy = 0; oy < g.outH; oy++) {
          const int64_t iy = oy * g.strideH - g.padH + ky;
          if (iy < 0 || iy >= g.inH) continue;
          float* dst = plane + iy * g.inW;
          const float* src = base + oy * g.outW;
          for (int64_t ox = 0; ox < g.outW; ox++) {
            const int64_t ix = ox * g.strideW - g.padW + kx;
            if (ix >= 0 && ix < g.inW) dst[ix] += src[ox];
          }
        }
      }
    }
  }
}

/** A 1×1, stride-1, unpadded convolution needs no columns: the image already is the matrix. */
bool pointwise(const ConvGeom& g) {
  return g.kH == 1 && g.kW == 1 && g.strideH == 1 && g.strideW == 1 && g.padH == 0 && g.padW == 0;
}

Gemm matmul(bool ta, bool tb, int64_t M, int64_t N, int64_t K, const float* A, const float* B, float beta, float* C) {
  Gemm m;
  m.transA = ta;
  m.transB = tb;
  m.M = M;
  m.N = N;
  m.K = K;
  m.A = A;
  m.lda = ta ? M : K;
  m.B = B;
  m.ldb = tb ? K : N;
  m.beta = beta;
  m.C = C;
  m.ldc = N;
  return m;
}

std::vector<float>& scratch() {
  static thread_local std::vector<float> cols;
  return cols;
}

}  // namespace

void convForwardIm2col(const ConvGeom& g, const float* x, const float* w, const float* bias, float* y) {
  const int64_t kdim = g.inC * g.kH * g.kW, ohw = g.outH * g.outW;
  auto& cols = scratch();
  if (!pointwise(g)) cols.resize(static_cast<size_t>(kdim * ohw));
  for (int64_t n = 0; n < g.batch; n++) {
    const float* xn = x + n * g.inC * g.inH * g.inW;
    float* yn = y + n * g.outC * ohw;
    const float* c = xn;
    if (!pointwise(g)) {
      im2col(g, xn, cols.data());
      c = cols.data();
    }
    sgemm(matmul(false, false, g.outC, ohw, kdim, w, c, 0.0f, yn));
    if (bias)
      for (int64_t o = 0; o < g.outC; o++)
        for (int64_t i = 0; i < ohw; i++) yn[o * ohw + i] += bias[o];
  }
}

void convBackwardIm2col(const ConvGeom& g, const float* x, const float* w, const float* gy, float* gx,
                        float* gw, float* gb) {
  const int64_t kdim = g.inC * g.kH * g.kW, ohw = g.outH * g.outW;
  auto& cols = scratch();
  cols.resize(static_cast<size_t>(kdim * ohw));
  for (int64_t n = 0; n < g.batch; n++) {
    const float* xn = x + n * g.inC * g.inH * g.inW;
    const float* gyn = gy + n * g.outC * ohw;
    const float* c = xn;
    if (!pointwise(g)) {
      im2col(g, xn, cols.data());
      c = cols.data();
    }
    sgemm(matmul(false, true, g.outC, kdim, ohw, gyn, c, 1.0f, gw));  // gw += gy_n · cols^T
    if (gb)
      for (int64_t o = 0; o < g.outC; o++) {
        double s = 0;
        for (int64_t i = 0; i < ohw; i++) s += gyn[o * ohw + i];
        gb[o] += static_cast<float>(s);
      }
    if (!gx) continue;
    float* gxn = gx + n * g.inC * g.inH * g.inW;
    if (pointwise(g)) {
      sgemm(matmul(true, false, kdim, ohw, g.outC, w, gyn, 1.0f, gxn));  // gx_n += W^T · gy_n
    } else {
      sgemm(matmul(true, false, kdim, ohw, g.outC, w, gyn, 0.0f, cols.data()));
      col2im(g, cols.data(), gxn);
    }
  }
}

}  // namespace sc
