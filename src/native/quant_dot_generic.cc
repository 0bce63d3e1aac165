// The integer path in portable C++ (every architecture; the level "generic", and arm64 without
// DotProd): quant_dot_body.h with a plain 32-value dot product, exact in int32.
#include "quant_dot.h"

namespace sc {
namespace {

#define SC_QDOT_TARGET

struct Isa {
  using Acc = float;
  static inline float zero() { return 0.0f; }
  static inline float dot32(float acc, const int8_t* w, const int8_t* x, float a0, float a1) {
    int32_t s0 = 0, s1 = 0;
    for (int j = 0; j < 16; j++) s0 += static_cast<int32_t>(w[j]) * static_cast<int32_t>(x[j]);
    for (int j = 16; j < 32; j++) s1 += static_cast<int32_t>(w[j]) * static_cast<int32_t>(x[j]);
    return acc + (a0 * static_cast<float>(s0) + a1 * static_cast<float>(s1));
  }
  static inline float dot32one(float acc, const int8_t* w, const int8_t* x, float s) {
    int32_t t = 0;
    for (int j = 0; j < 32; j++) t += static_cast<int32_t>(w[j]) * static_cast<int32_t>(x[j]);
    return acc + s * static_cast<float>(t);
  }
  static inline float sum(float acc) { return acc; }
};

using Unpack = ScalarUnpack;

#include "quant_dot_body.h"

#undef SC_QDOT_TARGET

}  // namespace

void quantDotGeneric(const QuantDot& t, int64_t n0, int64_t n1) { dotRowsAny(t, n0, n1); }

}  // namespace sc
