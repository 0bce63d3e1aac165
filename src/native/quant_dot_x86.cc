// The integer path on x86-64: AVX2 (maddubs + madd) and AVX512-VNNI (vpdpbusd on 256-bit vectors,
// AVX512-VL), each quant_dot_body.h with its own 32-byte dot product. Both multiply unsigned by
// signed bytes, so the weight's codes go in as |c| and x's as x·sign(c) (the sign trick): every code
// is in [-128, 127] (quant_blocks.h) and x's in [-127, 127], so maddubs' pair sums reach at most
// 2·128·127 = 32512 and never saturate its int16. Compiled for the ISA by target attributes only:
// the binary keeps the baseline's -march, and cpuFeatures() picks the kernel (quant_linear.cc).
#include "quant_dot.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>

namespace sc {

namespace avx2 {
namespace {

#define SC_QDOT_TARGET __attribute__((target("avx2,fma,f16c")))

#include "quant_unpack_x86.h"

struct Isa {
  using Acc = __m256;
  static SC_QDOT_TARGET inline __m256 zero() { return _mm256_setzero_ps(); }
  static SC_QDOT_TARGET inline __m256 dot32(__m256 acc, const int8_t* w, const int8_t* x, float a0, float a1) {
    const __m256i wv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w));
    const __m256i xv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x));
    const __m256i pairs = _mm256_maddubs_epi16(_mm256_sign_epi8(wv, wv), _mm256_sign_epi8(xv, wv));
    const __m256i quads = _mm256_madd_epi16(pairs, _mm256_set1_epi16(1));  // lanes 0-3: bytes 0-15
    const __m256 scale = _mm256_set_m128(_mm_set1_ps(a1), _mm_set1_ps(a0));
    return _mm256_fmadd_ps(_mm256_cvtepi32_ps(quads), scale, acc);
  }
  static SC_QDOT_TARGET inline __m256 dot32one(__m256 acc, const int8_t* w, const int8_t* x, float s) {
    const __m256i wv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w));
    const __m256i xv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x));
    const __m256i pairs = _mm256_maddubs_epi16(_mm256_sign_epi8(wv, wv), _mm256_sign_epi8(xv, wv));
    return scaleAdd(acc, _mm256_madd_epi16(pairs, _mm256_set1_epi16(1)), s);
  }
  static SC_QDOT_TARGET inline float sum(__m256 v) { return hsum(v); }
};

#include "quant_dot_body.h"

#undef SC_QDOT_TARGET

}  // namespace
}  // namespace avx2

namespace vnni {
namespace {

#define SC_QDOT_TARGET __attribute__((target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")))

#include "quant_unpack_x86.h"

struct Isa {
  using Acc = __m256;
  static SC_QDOT_TARGET inline __m256 zero() { return _mm256_setzero_ps(); }
  static SC_QDOT_TARGET inline __m256 dot32(__m256 acc, const int8_t* w, const int8_t* x, float a0, float a1) {
    const __m256i wv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w));
    const __m256i xv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x));
    const __m256i quads = _mm256_dpbusd_epi32(_mm256_setzero_si256(), _mm256_sign_epi8(wv, wv), _mm256_sign_epi8(xv, wv));
    const __m256 scale = _mm256_set_m128(_mm_set1_ps(a1), _mm_set1_ps(a0));
    return _mm256_fmadd_ps(_mm256_cvtepi32_ps(quads), scale, acc);
  }
  static SC_QDOT_TARGET inline __m256 dot32one(__m256 acc, const int8_t* w, const int8_t* x, float s) {
    const __m256i wv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w));
    const __m256i xv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x));
    return scaleAdd(acc, _mm256_dpbusd_epi32(_mm256_setzero_si256(), _mm256_sign_epi8(wv, wv), _mm256_sign_epi8(xv, wv)), s);
  }
  static SC_QDOT_TARGET inline float sum(__m256 v) { return hsum(v); }
};

#include "quant_dot_body.h"

#undef SC_QDOT_TARGET

}  // namespace
}  // namespace vnni

void quantDotAvx2(const QuantDot& t, int64_t n0, int64_t n1) { avx2::dotRowsAny(t, n0, n1); }
void quantDotVnni(const QuantDot& t, int64_t n0, int64_t n1) { vnni::dotRowsAny(t, n0, n1); }

}  // namespace sc

#elif defined(__x86_64__)
namespace sc {
void quantDotAvx2(const QuantDot& t, int64_t n0, int64_t n1) { quantDotGeneric(t, n0, n1); }
void quantDotVnni(const QuantDot& t, int64_t n0, int64_t n1) { quantDotGeneric(t, n0, n1); }
}  // namespace sc
#endif
