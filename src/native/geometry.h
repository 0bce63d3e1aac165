// Convolution and pooling geometry as packed by the TS layer into a Float64Array, validated once
// so that the kernels can index without further checks.
#pragma once

#include <cstdint>
#include <string>

#include "napi_args.h"

namespace sc {

struct ConvGeom {
  int64_t batch, inC, inH, inW, outC, kH, kW, strideH, strideW, padH, padW, outH, outW;
  int64_t xSize() const { return batch * inC * inH * inW; }
  int64_t wSize() const { return outC * inC * kH * kW; }
  int64_t ySize() const { return batch * outC * outH * outW; }
};

struct PoolGeom {
  int64_t batch, channels, inH, inW, kH, kW, strideH, strideW, padH, padW, outH, outW;
  int64_t xSize() const { return batch * channels * inH * inW; }
  int64_t ySize() const { return batch * channels * outH * outW; }
};

inline void checkOut(const Args& a, const char* what, int64_t in, int64_t pad, int64_t k, int64_t stride, int64_t out) {
  const int64_t want = (in + 2 * pad - k) / stride + 1;
  if (in + 2 * pad < k || out != want)
    throwRange(std::string(a.fn()) + ": " + what + " is " + std::to_string(out) + " but the geometry gives " +
               std::to_string(in + 2 * pad < k ? 0 : want));
}

/** [batch, inC, inH, inW, outC, kH, kW, strideH, strideW, padH, padW, outH, outW] */
inline ConvGeom convGeom(const Args& a, size_t i) {
  const double* d = a.ints(i, "geometry", 13);
  ConvGeom g;
  int64_t* f[] = {&g.batch, &g.inC, &g.inH, &g.inW, &g.outC, &g.kH, &g.kW, &g.strideH, &g.strideW, &g.padH, &g.padW, &g.outH, &g.outW};
  for (int k = 0; k < 13; k++) *f[k] = static_cast<int64_t>(d[k]);
  if (g.batch < 0 || g.inC < 1 || g.inH < 1 || g.inW < 1 || g.outC < 1 || g.kH < 1 || g.kW < 1 ||
      g.strideH < 1 || g.strideW < 1 || g.padH < 0 || g.padW < 0)
    throwRange(std::string(a.fn()) + ": invalid convolution geometry");
  checkOut(a, "outH", g.inH, g.padH, g.kH, g.strideH, g.outH);
  checkOut(a, "outW", g.inW, g.padW, g.kW, g.strideW, g.outW);
  return g;
}

/** [batch, channels, inH, inW, kH, kW, strideH, strideW, padH, padW, outH, outW] */
inline PoolGeom poolGeom(const Args& a, size_t i) {
  const double* d = a.ints(i, "geometry", 12);
  PoolGeom g;
  int64_t* f[] = {&g.batch, &g.channels, &g.inH, &g.inW, &g.kH, &g.kW, &g.strideH, &g.strideW, &g.padH, &g.padW, &g.outH, &g.outW};
  for (int k = 0; k < 12; k++) *f[k] = static_cast<int64_t>(d[k]);
  if (g.batch < 0 || g.channels < 0 || g.inH < 1 || g.inW < 1 || g.kH < 1 || g.kW < 1 || g.strideH < 1 ||
      g.strideW < 1 || g.padH < 0 || g.padW < 0)
    throwRange(std::string(a.fn()) + ": invalid pooling geometry");
  checkOut(a, "outH", g.inH, g.padH, g.kH, g.strideH, g.outH);
  checkOut(a, "outW", g.inW, g.padW, g.kW, g.strideW, g.outW);
  return g;
}

}  // namespace sc
