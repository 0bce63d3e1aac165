// Float32 weights into ggml's K-quant blocks (Q4_K, Q5_K, Q6_K): src/tensor/quant/k_fit.ts and
// k_quants.ts (ggml's quantize_row_q{4,5,6}_K_ref) in C++, byte for byte. Their search over candidate
// scales is what loading a model with --quantize q4_k_m, or exporting one, spent its minutes on
// (the 1B Llama shape: ~10 minutes in JavaScript). Every operation rounds to float as the
// reference's Math.fround does: no contraction into fused multiply-adds (the pragmas), subnormals
// kept (the flush mode cleared while a block is quantized), and only finite weights below 2^32 —
// where no sum can overflow — come here; the rest stay with the JavaScript reference. On AVX2 and
// NEON the searches of a block's groups run eight at once, a group a vector lane (quant_fit.h).
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

#include <cmath>
#include <cstdint>
#include <cstring>

#include "denormals.h"
#include "napi_args.h"
#include "quant_blocks.h"
#include "quant_fit.h"
#include "registry.h"
#include "threads.h"

namespace sc {
namespace {

/** ggml's nearest_int (k_fit.ts nearestInt): to nearest, ties to even, by the float sum with 1.5·2²³. */
inline double nearestInt(float x) { return static_cast<double>(x + 12582912.0f) - 12582912.0; }

inline double clampTo(double v, double lo, double hi) { return v < lo ? lo : v > hi ? hi : v; }

/** A code as a Uint8Array stores a number: the low byte of the integer. */
inline uint8_t byteOf(double v) { return static_cast<uint8_t>(static_cast<int64_t>(v)); }

/** float32 → float16 bits, to nearest even (util/float_formats.ts toF16Bits). */
uint16_t halfBits(float x) {
  uint32_t bits;
  std::memcpy(&bits, &x, 4);
  const uint32_t sign = (bits >> 16) & 0x8000, exp = (bits >> 23) & 0xff, mant = bits & 0x7fffff;
  if (exp == 0xff) return static_cast<uint16_t>(sign | 0x7c00 | (mant != 0 ? 0x200 : 0));
  const int e = static_cast<int>(exp) - 112;
  if (e >= 31) return static_cast<uint16_t>(sign | 0x7c00);
  const auto roundShift = [](uint32_t value, int shift) {
    const uint32_t kept = value >> shift, rest = value & ((1u << shift) - 1), half = 1u << (shift - 1);
    return rest > half || (rest == half && (kept & 1)) ? kept + 1 : kept;
  };
  if (e <= 0) return static_cast<uint16_t>(e < -10 ? sign : sign | roundShift(mant | 0x800000, 14 - e));
  return static_cast<uint16_t>(sign | roundShift((static_cast<uint32_t>(e) << 23) | mant, 13));
}

/** Writes x as float16 at p; the value stored. */
float putHalf(uint8_t* p, float x) {
  const uint16_t h = halfBits(x);
  p[0] = static_cast<uint8_t>(h & 0xff);
  p[1] = static_cast<uint8_t>(h >> 8);
  return halfToFloat(h);
}

/** k_fit.ts fitAffine (make_qkx2_quants): codes 0..nmax for x[0, n), weights w, nstep + 1 candidate scales. */
AffineFit fitAffine(const float* x, int n, int nmax, const float* w, uint8_t* codes, float rmin, float rdelta, int nstep) {
  float min = x[0], max = x[0], sumW = w[0], sumX = sumW * x[0];
  for (int i = 1; i < n; i++) {
    if (x[i] < min) min = x[i];
    if (x[i] > max) max = x[i];
    sumW = sumW + w[i];
    sumX = sumX + w[i] * x[i];
  }
  if (min > 0) min = 0;
  if (max == min) {
    std::memset(codes, 0, static_cast<size_t>(n));
    return {0.0f, -min};
  }
  const float range = max - min;
  float iscale = static_cast<float>(nmax) / range, scale = 1.0f / iscale, best = 0;
  for (int i = 0; i < n; i++) {
    const double l = clampTo(nearestInt(iscale * (x[i] - min)), 0, nmax);
    codes[i] = byteOf(l);
    const float diff = scale * static_cast<float>(l) + min - x[i];
    best = best + w[i] * (diff * diff);
  }
  uint8_t trial[32];
  for (int step = 0; step <= nstep; step++) {
    iscale = (rmin + rdelta * static_cast<float>(step) + static_cast<float>(nmax)) / range;
    float sumL = 0, sumL2 = 0, sumXL = 0;
    for (int i = 0; i < n; i++) {
      const double l = clampTo(nearestInt(iscale * (x[i] - min)), 0, nmax);
      trial[i] = byteOf(l);
      const float wl = w[i] * static_cast<float>(l);
      sumL = sumL + wl;
      sumL2 = sumL2 + wl * static_cast<float>(l);
      sumXL = sumXL + wl * x[i];
    }
    const float D = sumW * sumL2 - sumL * sumL;
    if (!(D > 0)) continue;
    float thisScale = (sumW * sumXL - sumX * sumL) / D, thisMin = (sumL2 * sumX - sumL * sumXL) / D;
    if (thisMin > 0) {
      thisMin = 0;
      thisScale = sumXL / sumL2;
    }
    float err = 0;
    for (int i = 0; i < n; i++) {
      const float diff = thisScale * static_cast<float>(trial[i]) + thisMin - x[i];
      err = err + w[i] * (diff * diff);
    }
    if (err < best) {
      std::memcpy(codes, trial, static_cast<size_t>(n));
      best = err;
      scale = thisScale;
      min = thisMin;
    }
  }
  return {scale, -min};
}

/** k_fit.ts fitSymmetric (make_qx_quants, rmse 1): codes −nmax..nmax−1 stored + nmax, the signed scale. */
float fitSymmetric(const float* x, int n, int nmax, uint8_t* codes) {
  float amax = 0, max = 0;
  for (int i = 0; i < n; i++) {
    if (std::fabs(x[i]) > amax) {
      amax = std::fabs(x[i]);
      max = x[i];
    }
  }
  if (amax < 1e-15) {
    std::memset(codes, 0, static_cast<size_t>(n));
    return 0;
  }
  float sumLX = 0, sumL2 = 0;
  const auto sums = [&](float iscale, bool store) {
    sumLX = 0;
    sumL2 = 0;
    for (int i = 0; i < n; i++) {
      const float v = x[i], l = static_cast<float>(clampTo(nearestInt(iscale * v), -nmax, nmax - 1));
      if (store) codes[i] = byteOf(static_cast<double>(l) + nmax);
      const float w = v * v;
      sumLX = sumLX + (w * v) * l;
      sumL2 = sumL2 + (w * l) * l;
    }
  };
  sums(-static_cast<float>(nmax) / max, true);
  float scale = sumL2 != 0 ? sumLX / sumL2 : 0, best = scale * sumLX;
  for (int step = -9; step <= 9; step++) {
    if (step == 0) continue;
    const float iscale = -(static_cast<float>(nmax) + 0.1f * static_cast<float>(step)) / max;
    sums(iscale, false);
    if (sumL2 > 0 && sumLX * sumLX > best * sumL2) {
      sums(iscale, true);
      scale = sumLX / sumL2;
      best = scale * sumLX;
    }
  }
  return scale;
}

/** k_quants.ts quantizeAffineK: Q4_K's and Q5_K's scales, mins and d, dmin written; the codes in L. */
void quantizeAffineK(const float* x, uint8_t* out, int nmax, float rmin, int nstep, uint8_t* L) {
  AffineFit fits[8];
  float w[256];
  for (int g = 0; g < 8; g++) {
    const float* xg = x + 32 * g;
    float sumX2 = 0;
    for (int l = 0; l < 32; l++) sumX2 = sumX2 + xg[l] * xg[l];
    const float avX = std::sqrt(sumX2 / 32.0f);
    for (int l = 0; l < 32; l++) w[32 * g + l] = avX + std::fabs(xg[l]);
  }
  if (vectorFitsAvailable()) fitAffine8(x, w, nmax, rmin, 0.1f, nstep, L, fits);
  else
    for (int g = 0; g < 8; g++) fits[g] = fitAffine(x + 32 * g, 32, nmax, w + 32 * g, L + 32 * g, rmin, 0.1f, nstep);
  float maxScale = 0, maxMin = 0;
  for (int g = 0; g < 8; g++) {
    if (fits[g].scale > maxScale) maxScale = fits[g].scale;
    if (fits[g].min > maxMin) maxMin = fits[g].min;
  }
  const float invScale = maxScale > 0 ? 63.0f / maxScale : 0, invMin = maxMin > 0 ? 63.0f / maxMin : 0;
  uint8_t ls[8], lm[8];
  for (int g = 0; g < 8; g++) {
    ls[g] = byteOf(std::fmin(63.0, nearestInt(invScale * fits[g].scale)));
    lm[g] = byteOf(std::fmin(63.0, nearestInt(invMin * fits[g].min)));
  }
  packScalesMins(ls, lm, out + 4);
  const float d = putHalf(out, maxScale / 63.0f), dmin = putHalf(out + 2, maxMin / 63.0f);
  for (int g = 0; g < 8; g++) {
    const float dl = d * static_cast<float>(ls[g]);
    if (dl == 0) continue;
    const float dm = dmin * static_cast<float>(lm[g]);
    for (int l = 0; l < 32; l++) L[32 * g + l] = byteOf(clampTo(nearestInt((x[32 * g + l] + dm) / dl), 0, nmax));
  }
}

/** Low nibbles of the codes, groups 2c and 2c + 1 in the 32 bytes at qs + 32c (Q4_K, Q5_K). */
void packNibbles(const uint8_t* L, uint8_t* qs) {
  for (int c = 0; c < 4; c++)
    for (int l = 0; l < 32; l++) qs[32 * c + l] = static_cast<uint8_t>((L[64 * c + l] & 0x0f) | ((L[64 * c + 32 + l] & 0x0f) << 4));
}

void quantizeQ4K(const float* x, uint8_t* out) {
  uint8_t L[256];
  quantizeAffineK(x, out, 15, -1.0f, 20, L);
  packNibbles(L, out + 16);
}

void quantizeQ5K(const float* x, uint8_t* out) {
  uint8_t L[256];
  quantizeAffineK(x, out, 31, -0.5f, 15, L);
  for (int j = 0; j < 32; j++) {
    int bits = 0;
    for (int g = 0; g < 8; g++) bits |= (L[32 * g + j] >> 4) << g;
    out[16 + j] = static_cast<uint8_t>(bits);
  }
  packNibbles(L, out + 48);
}

void quantizeQ6K(const float* x, uint8_t* out) {
  uint8_t L[256];
  float scales[16], maxScale = 0, maxAbs = 0;
  if (vectorFitsAvailable())
    for (int half = 0; half < 2; half++) fitSymmetric8(x + 128 * half, 32, L + 128 * half, scales + 8 * half);
  else
    for (int g = 0; g < 16; g++) scales[g] = fitSymmetric(x + 16 * g, 16, 32, L + 16 * g);
  for (int g = 0; g < 16; g++) {
    if (std::fabs(scales[g]) > maxAbs) {
      maxAbs = std::fabs(scales[g]);
      maxScale = scales[g];
    }
  }
  if (maxAbs < 1e-15) {
    std::memset(out, 0, 210);
    return;
  }
  const float iscale = -128.0f / maxScale, d = putHalf(out + 208, 1.0f / iscale);
  for (int g = 0; g < 16; g++) {
    const int sc = static_cast<int>(std::fmin(127.0, nearestInt(iscale * scales[g])));
    out[192 + g] = static_cast<uint8_t>(sc & 0xff);
    const float dl = d * static_cast<float>(static_cast<int8_t>(sc & 0xff));
    if (dl == 0) continue;
    for (int l = 0; l < 16; l++) L[16 * g + l] = byteOf(clampTo(nearestInt(x[16 * g + l] / dl), -32, 31) + 32);
  }
  packQ6KCodes(L, out);
}

using BlockQuantizer = void (*)(const float*, uint8_t*);

BlockQuantizer blockQuantizer(QFmt f) {
  if (f == QFmt::Q4_K) return quantizeQ4K;
  if (f == QFmt::Q5_K) return quantizeQ5K;
  if (f == QFmt::Q6_K) return quantizeQ6K;
  return nullptr;
}

/** Whether every value is finite and below 2^32 in magnitude (this file's header says why). */
bool quantizable(const float* x, int64_t n) {
  bool ok = true;
  for (int64_t i = 0; i < n; i++) ok &= std::fabs(x[i]) < 4294967296.0f;  // false for NaN too
  return ok;
}

// quantizeRows(format, x, rows, K, out): x's rows into format's blocks in out, over the threads.
// Returns false, writing nothing, where this file has no quantizer for the format or x holds a value
// it does not take (the caller quantizes with the JavaScript reference then).
napi_value QuantizeRowsKernel(Args& a) {
  const QFmt f = static_cast<QFmt>(a.integer(0, "format", 0, static_cast<int64_t>(QFmt::Count) - 1));
  const int64_t rows = a.integer(2, "rows", 0), K = a.integer(3, "K", 1);
  const BlockQuantizer quantize = blockQuantizer(f);
  const F32 x = a.f32(1, "x");
  const U8 out = a.u8(4, "out");
  if (quantize == nullptr) return boolValue(a.env(), false);
  if (K % 256 != 0) throwRange("quantizeRows: K " + std::to_string(K) + " is not whole blocks of 256");
  a.need(x, rows * K, "x");
  a.need(out, qRowBytes(f, K) * rows, "out");
  if (!quantizable(x.p, rows * K)) return boolValue(a.env(), false);
  const int64_t blocks = rows * K / 256, bytes = qBlockBytes(f);
  parallelRange(blocks, 16, [&](int64_t lo, int64_t hi) {
    const DenormalScope keepSubnormals(false);  // as the reference's arithmetic
    for (int64_t b = lo; b < hi; b++) quantize(x.p + 256 * b, out.p + bytes * b);
  });
  return boolValue(a.env(), true);
}

}  // namespace

void registerQuantize(napi_env env, napi_value exports) { defineFunction(env, exports, "quantizeRows", entry<QuantizeRowsKernel>); }

}  // namespace sc
