// ScalarUnpack's steps in NEON registers, for the arm64 integer paths (quant_dot_neon.cc,
// quant_tiles_int8_neon.cc). Included inside each file's namespace, after SC_QDOT_TARGET names the
// target, so each copy is compiled for its own.
// No include guard: each file includes it once.

/** ScalarUnpack's steps in NEON registers. */
struct Unpack {
  static SC_QDOT_TARGET inline float half(uint16_t h) {
    return vgetq_lane_f32(vcvt_f32_f16(vreinterpret_f16_u16(vdup_n_u16(h))), 0);
  }
  static SC_QDOT_TARGET inline void nibbles16(const uint8_t* q, int8_t* c, int bias) {
    const uint8x16_t v = vld1q_u8(q);
    const int8x16_t b = vdupq_n_s8(static_cast<int8_t>(bias));
    vst1q_s8(c, vsubq_s8(vreinterpretq_s8_u8(vandq_u8(v, vdupq_n_u8(15))), b));
    vst1q_s8(c + 16, vsubq_s8(vreinterpretq_s8_u8(vshrq_n_u8(v, 4)), b));
  }
  static SC_QDOT_TARGET inline void nibblesPaired16(const uint8_t* q, int8_t* c) {
    const uint8x16_t v = vld1q_u8(q);
    uint8x16x2_t pair;
    pair.val[0] = vandq_u8(v, vdupq_n_u8(15));
    pair.val[1] = vshrq_n_u8(v, 4);
    vst2q_u8(reinterpret_cast<uint8_t*>(c), pair);  // interleaved: low, high, low, high …
  }
  static SC_QDOT_TARGET inline void nibbles32(const uint8_t* q, int8_t* c) {
    for (int h = 0; h < 2; h++) {
      const uint8x16_t v = vld1q_u8(q + 16 * h);
      vst1q_s8(c + 16 * h, vreinterpretq_s8_u8(vandq_u8(v, vdupq_n_u8(15))));
      vst1q_s8(c + 32 + 16 * h, vreinterpretq_s8_u8(vshrq_n_u8(v, 4)));
    }
  }
  static SC_QDOT_TARGET inline void q6Codes128(const uint8_t* ql, const uint8_t* qh, int8_t* o) {
    const uint8x16_t m4 = vdupq_n_u8(15), m2 = vdupq_n_u8(0x30);
    const int8x16_t bias = vdupq_n_s8(32);
    for (int k = 0; k < 2; k++) {
      const uint8x16_t lo0 = vld1q_u8(ql + 16 * k), lo1 = vld1q_u8(ql + 32 + 16 * k), hi = vld1q_u8(qh + 16 * k);
      const uint8x16_t codes[4] = {
          vorrq_u8(vandq_u8(lo0, m4), vandq_u8(vshlq_n_u8(hi, 4), m2)), vorrq_u8(vandq_u8(lo1, m4), vandq_u8(vshlq_n_u8(hi, 2), m2)),
          vorrq_u8(vshrq_n_u8(lo0, 4), vandq_u8(hi, m2)), vorrq_u8(vshrq_n_u8(lo1, 4), vandq_u8(vshrq_n_u8(hi, 2), m2))};
      for (int i = 0; i < 4; i++) vst1q_s8(o + 32 * i + 16 * k, vsubq_s8(vreinterpretq_s8_u8(codes[i]), bias));
    }
  }
  static SC_QDOT_TARGET inline void fifthBits32(uint32_t qh, int8_t* c, int bias) {
    static const uint8_t kBit[16] = {1, 2, 4, 8, 16, 32, 64, 128, 1, 2, 4, 8, 16, 32, 64, 128};
    const uint8x16_t bit = vld1q_u8(kBit);
    const int8x16_t b = vdupq_n_s8(static_cast<int8_t>(bias));
    for (int h = 0; h < 2; h++) {
      // Bytes 8h·2 .. of qh: byte j of this half takes byte j/8 of its 16 bits, then bit j%8.
      const uint8x8_t lo = vdup_n_u8(static_cast<uint8_t>(qh >> (16 * h))), hi = vdup_n_u8(static_cast<uint8_t>(qh >> (16 * h + 8)));
      const uint8x16_t set = vtstq_u8(vcombine_u8(lo, hi), bit);
      const int8x16_t add = vsubq_s8(vreinterpretq_s8_u8(vandq_u8(set, vdupq_n_u8(16))), b);
      vst1q_s8(c + 16 * h, vaddq_s8(vld1q_s8(c + 16 * h), add));
    }
  }
  static SC_QDOT_TARGET inline void q5kCodes64(const uint8_t* q, const uint8_t* qh, int bit, int8_t* c) {
    const uint8x16_t one = vdupq_n_u8(1);
    const int8x16_t right0 = vdupq_n_s8(static_cast<int8_t>(-bit)), right1 = vdupq_n_s8(static_cast<int8_t>(-bit - 1));  // vshlq by a negative count: a right shift
    for (int k = 0; k < 2; k++) {
      const uint8x16_t v = vld1q_u8(q + 16 * k), h = vld1q_u8(qh + 16 * k);
      const uint8x16_t lo = vorrq_u8(vandq_u8(v, vdupq_n_u8(15)), vshlq_n_u8(vandq_u8(vshlq_u8(h, right0), one), 4));
      const uint8x16_t hi = vorrq_u8(vshrq_n_u8(v, 4), vshlq_n_u8(vandq_u8(vshlq_u8(h, right1), one), 4));
      vst1q_s8(c + 16 * k, vreinterpretq_s8_u8(lo));
      vst1q_s8(c + 32 + 16 * k, vreinterpretq_s8_u8(hi));
    }
  }
};
