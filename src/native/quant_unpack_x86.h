// Pieces of the x86 integer path that AVX2 and AVX512-VNNI share (quant_dot_x86.cc): the horizontal
// sum and ScalarUnpack's steps in SSE/AVX2 registers. Included inside each ISA's namespace, after
// SC_QDOT_TARGET names that ISA, so each copy is compiled for its own target.
// No include guard: quant_dot_x86.cc includes it once per ISA.

/** acc + s·(the 32 products' int32 sums), one scale for the whole chunk. */
static SC_QDOT_TARGET inline __m256 scaleAdd(__m256 acc, __m256i quads, float s) {
  return _mm256_fmadd_ps(_mm256_cvtepi32_ps(quads), _mm256_set1_ps(s), acc);
}

static SC_QDOT_TARGET inline float hsum(__m256 v) {
  const __m128 h = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  const __m128 q = _mm_add_ps(h, _mm_movehl_ps(h, h));
  return _mm_cvtss_f32(_mm_add_ss(q, _mm_movehdup_ps(q)));
}

/** ScalarUnpack's steps in SSE/AVX2 registers. */
struct Unpack {
  static SC_QDOT_TARGET inline float half(uint16_t h) { return _cvtsh_ss(h); }
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
  static SC_QDOT_TARGET inline void nibbles32(const uint8_t* q, int8_t* c) {
    const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(q));
    const __m256i m = _mm256_set1_epi8(15);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(c), _mm256_and_si256(v, m));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(c + 32), _mm256_and_si256(_mm256_srli_epi16(v, 4), m));
  }
  static SC_QDOT_TARGET inline void q6Codes128(const uint8_t* ql, const uint8_t* qh, int8_t* o) {
    const __m256i lo0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(ql));
    const __m256i lo1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(ql + 32));
    const __m256i hi = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(qh));
    const __m256i m4 = _mm256_set1_epi8(15), m2 = _mm256_set1_epi8(0x30), bias = _mm256_set1_epi8(32);
    // Each 2-bit high moved to bits 4-5 of its byte; 16-bit shifts spill into the neighbour byte, which the 0x30 mask drops.
    const __m256i h0 = _mm256_and_si256(_mm256_slli_epi16(hi, 4), m2), h1 = _mm256_and_si256(_mm256_slli_epi16(hi, 2), m2);
    const __m256i h2 = _mm256_and_si256(hi, m2), h3 = _mm256_and_si256(_mm256_srli_epi16(hi, 2), m2);
    const __m256i codes[4] = {
        _mm256_or_si256(_mm256_and_si256(lo0, m4), h0), _mm256_or_si256(_mm256_and_si256(lo1, m4), h1),
        _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(lo0, 4), m4), h2),
        _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(lo1, 4), m4), h3)};
    for (int i = 0; i < 4; i++) _mm256_storeu_si256(reinterpret_cast<__m256i*>(o + 32 * i), _mm256_sub_epi8(codes[i], bias));
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
  static SC_QDOT_TARGET inline void q5kCodes64(const uint8_t* q, const uint8_t* qh, int bit, int8_t* c) {
    const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(q)), h = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(qh));
    const __m256i m4 = _mm256_set1_epi8(15), sixteen = _mm256_set1_epi8(16);
    const __m256i nibbles[2] = {_mm256_and_si256(v, m4), _mm256_and_si256(_mm256_srli_epi16(v, 4), m4)};
    for (int half = 0; half < 2; half++) {
      // 16-bit shifts: bit `bit` (+ 1) of each byte to bit 0, then to bit 4; what spills from the neighbour byte is masked off.
      const __m256i fifth = _mm256_and_si256(_mm256_slli_epi16(_mm256_srl_epi16(h, _mm_cvtsi32_si128(bit + half)), 4), sixteen);
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(c + 32 * half), _mm256_or_si256(nibbles[half], fifth));
    }
  }
};

