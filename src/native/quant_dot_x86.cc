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
  static SC_QDOT_TARGET inline float sum(__m256 v) {
    const __m128 h = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    const __m128 q = _mm_add_ps(h, _mm_movehl_ps(h, h));
    return _mm_cvtss_f32(_mm_add_ss(q, _mm_movehdup_ps(q)));
  }
};


/** ScalarUnpack's steps in SSE/AVX2 registers. */
struct Unpack {
  static SC_QDOT_TARGET inline void nibbles16(const uint8_t* q, int8_t* c, int bias) {
    const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(q));
    const __m128i m = _mm_set1_epi8(15);
    // One 32-byte store: two 16-byte ones would stall the 32-byte load that reads them back (no store forwarding).
    const __m256i both = _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(v, 4), m), _mm_and_si128(v, m));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(c), _mm256_sub_epi8(both, _mm256_set1_epi8(static_cast<char>(bias))));
  }
  static SC_QDOT_TARGET inline void nibblesPaired16(const uint8_t* q, int8_t* c) {
    const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(q));
    const __m128i m = _mm_set1_epi8(15);
    const __m128i lo = _mm_and_si128(v, m), hi = _mm_and_si128(_mm_srli_epi16(v, 4), m);
    const __m256i both = _mm256_set_m128i(_mm_unpackhi_epi8(lo, hi), _mm_unpacklo_epi8(lo, hi));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(c), both);
  }
  static SC_QDOT_TARGET inline void fifthBits32(uint32_t qh, int8_t* c, int bias) {
    // Byte j takes byte j/8 of qh (a shuffle within each 128-bit lane of the broadcast word), then its bit j%8.
    const __m256i word = _mm256_set1_epi32(static_cast<int>(qh));
    const __m256i spread = _mm256_shuffle_epi8(word, _mm256_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1,
                                                                      2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3));
    const __m256i bit = _mm256_set1_epi64x(static_cast<long long>(0x8040201008040201ULL));
    const __m256i set = _mm256_cmpeq_epi8(_mm256_and_si256(spread, bit), bit);
    const __m256i add = _mm256_sub_epi8(_mm256_and_si256(set, _mm256_set1_epi8(16)), _mm256_set1_epi8(static_cast<char>(bias)));
    const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(c));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(c), _mm256_add_epi8(v, add));
  }
};

#include "quant_dot_body.h"

#undef SC_QDOT_TARGET

}  // namespace
}  // namespace avx2

namespace vnni {
namespace {

#define SC_QDOT_TARGET __attribute__((target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")))

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
  static SC_QDOT_TARGET inline float sum(__m256 v) {
    const __m128 h = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    const __m128 q = _mm_add_ps(h, _mm_movehl_ps(h, h));
    return _mm_cvtss_f32(_mm_add_ss(q, _mm_movehdup_ps(q)));
  }
};


/** ScalarUnpack's steps in SSE/AVX2 registers. */
struct Unpack {
  static SC_QDOT_TARGET inline void nibbles16(const uint8_t* q, int8_t* c, int bias) {
    const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(q));
    const __m128i m = _mm_set1_epi8(15);
    // One 32-byte store: two 16-byte ones would stall the 32-byte load that reads them back (no store forwarding).
    const __m256i both = _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(v, 4), m), _mm_and_si128(v, m));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(c), _mm256_sub_epi8(both, _mm256_set1_epi8(static_cast<char>(bias))));
  }
  static SC_QDOT_TARGET inline void nibblesPaired16(const uint8_t* q, int8_t* c) {
    const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(q));
    const __m128i m = _mm_set1_epi8(15);
    const __m128i lo = _mm_and_si128(v, m), hi = _mm_and_si128(_mm_srli_epi16(v, 4), m);
    const __m256i both = _mm256_set_m128i(_mm_unpackhi_epi8(lo, hi), _mm_unpacklo_epi8(lo, hi));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(c), both);
  }
  static SC_QDOT_TARGET inline void fifthBits32(uint32_t qh, int8_t* c, int bias) {
    // Byte j takes byte j/8 of qh (a shuffle within each 128-bit lane of the broadcast word), then its bit j%8.
    const __m256i word = _mm256_set1_epi32(static_cast<int>(qh));
    const __m256i spread = _mm256_shuffle_epi8(word, _mm256_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1,
                                                                      2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3));
    const __m256i bit = _mm256_set1_epi64x(static_cast<long long>(0x8040201008040201ULL));
    const __m256i set = _mm256_cmpeq_epi8(_mm256_and_si256(spread, bit), bit);
    const __m256i add = _mm256_sub_epi8(_mm256_and_si256(set, _mm256_set1_epi8(16)), _mm256_set1_epi8(static_cast<char>(bias)));
    const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(c));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(c), _mm256_add_epi8(v, add));
  }
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
