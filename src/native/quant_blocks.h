// The quantized weight formats' blocks (src/tensor/quant/formats.ts has the byte layouts: ggml's
// Q8_0 Q4_0 Q4_1 Q5_0 Q5_1 Q4_K Q5_K Q6_K, MLX's affine groups of 64, QLoRA's NF4 and float16 rows
// held as read in blocks of 32), decoded two ways:
//  - dequantizeBlock: float32 values, rounded as gguf-py's numpy (and our js reference) does: every
//    product and sum one float32 rounding, in the order written. Bit for bit the js values, provided
//    no multiply-add is fused (quant_dequant.cc is compiled so) and denormals are not flushed.
//  - unpackBlock: the integer codes of the block as int8 (centred where the format is symmetric) with,
//    per 16 weights, a float scale a and offset b such that w = a·c + b (in real arithmetic): what the
//    integer dot products (quant_dot*.cc) multiply. Every code fits int8, so one u8×s8 product kernel
//    (the sign trick) serves every format that has integer codes: all but NF4, whose 16 levels are
//    not integers, and F16, whose values are floats (qIntegerCodes; quant_linear.cc sends both to the
//    dequantized tiles and the GEMM).
// Both are plain C++ inlined into each caller, so the compiler vectorises them for the caller's ISA.
#pragma once

#include <cstdint>
#include <cstring>

namespace sc {

/** The formats in src/tensor/quant/formats.ts QUANT_TYPES order (native.ts passes this index). */
enum class QFmt : int { Q8_0 = 0, Q4_0, Q4_1, Q5_0, Q5_1, Q4_K, Q5_K, Q6_K, Mlx4, Mlx8, Mlx4F16, Mlx8F16, Nf4, F16, Q4_0x8, Q8_0x8, Q5_0x8, Q4_Kx8, Q6_Kx8, Count };

/**
 * Q4_0x8, Q8_0x8, Q5_0x8: Q4_0's, Q8_0's and Q5_0's blocks with eight rows interleaved, what such a
 * matrix is repacked into at a generator's load where the 512-bit kernels read it
 * (quant_rows8_avx512.cc; llama.cpp's x86 repack is the same idea). Rows 8g..8g+7 are one span of
 * the matrix, block b of the eight at 8·B·b in it (B the row format's block: 18, 34, 22 bytes): the
 * eight fp16 scales (16 bytes); then the P = (B − 2) mod 8 bytes that precede each row's codes
 * (Q5_0's fifth bits: 4), transposed: byte p of row r at 16 + 8p + r (qRows8PrefixAt), so byte p of
 * the eight rows is one 64-bit word (Q5_0x8: the fifth bits of codes 8p..8p+7 of every row, a mask
 * whose byte r is row r's); then chunk c of 64 bytes for c < (B − 2 − P)/8, holding each row's
 * code bytes 8c..8c+7 (row r at 8r).
 *
 * Q4_Kx8: Q4_K's super-blocks with eight rows interleaved (quant_rows8_k_avx512.cc), 1152 bytes of
 * the eight: their d (16 bytes) and dmin (16); then the 64 scales and 64 mins, row r's of group j
 * (0..7) at index i = 16·⌊j/2⌋ + 2r + (j mod 2): their low four bits at 32 + i (the min's above the
 * scale's), their top two bits at 96 + (i mod 32) (bits 0-1 the scale's and 4-5 the min's for
 * i < 32, bits 2-3 and 6-7 past), so one vector holds the low bits and 32 bytes the top bits; then
 * from 128 the nibbles, 256 bytes for each pair of groups 2c and 2c + 1 as four vectors of 64: in
 * vector k, row r's eight bytes at 8r, the first four holding group 2c's codes 8k..8k+3 (low nibbles)
 * and 8k+4..8k+7 (high), the next four group 2c + 1's (so either half of a byte puts row r's two
 * groups in 32-bit lanes 2r and 2r + 1).
 *
 * Q6_Kx8: Q6_K's super-blocks with eight rows interleaved (quant_rows8_q6k_avx512.cc), 1680 bytes of
 * the eight: their d (16 bytes); then the 128 signed scales, row r's of group g (16 weights, 0..15)
 * at 16 + 16·⌊g/2⌋ + 2r + (g mod 2), so each block of 32 weights has its 16 in one run; then from 144,
 * for each block c of 32 weights (groups 2c and 2c + 1), 192 bytes as three vectors of 64, in which
 * row r's byte 8r + 4t + s concerns its weights 32c + 16t + 4k + s for k = 0..3: vector v's low six
 * bits hold the code of k = v, its top two bits bits 2v..2v+1 of the code of k = 3 (so code vector
 * k puts row r's two groups in 32-bit lanes 2r and 2r + 1).
 *
 * Each the same bytes as the eight rows, so a row's bytes average B a block, and a span of whole
 * groups of eight rows is a span of the matrix; a single row is not.
 */
constexpr int kRows8 = 8;
/** The interleaved formats of 32 weights a block (the first layout above). */
constexpr bool qRows8Of32(QFmt f) { return f == QFmt::Q4_0x8 || f == QFmt::Q8_0x8 || f == QFmt::Q5_0x8; }
/** Every interleaved format: rows held in groups of eight. */
constexpr bool qRows8(QFmt f) { return qRows8Of32(f) || f == QFmt::Q4_Kx8 || f == QFmt::Q6_Kx8; }
/** The row format an interleaved one is made from (f itself for the others). */
constexpr QFmt qRowFormat(QFmt f) {
  return f == QFmt::Q4_0x8   ? QFmt::Q4_0
         : f == QFmt::Q8_0x8 ? QFmt::Q8_0
         : f == QFmt::Q5_0x8 ? QFmt::Q5_0
         : f == QFmt::Q4_Kx8 ? QFmt::Q4_K
         : f == QFmt::Q6_Kx8 ? QFmt::Q6_K
                             : f;
}
/** The interleaved format made from a row format (Count: none). */
constexpr QFmt qRows8Format(QFmt f) {
  return f == QFmt::Q4_0   ? QFmt::Q4_0x8
         : f == QFmt::Q8_0 ? QFmt::Q8_0x8
         : f == QFmt::Q5_0 ? QFmt::Q5_0x8
         : f == QFmt::Q4_K ? QFmt::Q4_Kx8
         : f == QFmt::Q6_K ? QFmt::Q6_Kx8
                           : QFmt::Count;
}

struct QTraits {
  const char* name;
  int blockWeights;
  int blockBytes;
  bool offset;  // w = a·c + b with b ≠ 0 (the affine formats): the product needs x's partial sums
};

constexpr int qBlockWeights(QFmt f) {
  if (f == QFmt::Q4_K || f == QFmt::Q5_K || f == QFmt::Q6_K || f == QFmt::Q4_Kx8 || f == QFmt::Q6_Kx8) return 256;
  return f >= QFmt::Mlx4 && f <= QFmt::Nf4 ? 64 : 32;  // Mlx*, Nf4: 64
}
constexpr int qBlockBytes(QFmt f) {
  constexpr int bytes[] = {34, 18, 20, 22, 24, 144, 176, 210, 36, 68, 36, 68, 33, 64, 18, 34, 22, 144, 210};
  static_assert(sizeof bytes / sizeof bytes[0] == static_cast<int>(QFmt::Count), "a block size per format");
  return bytes[static_cast<int>(f)];
}
/** Bytes of a 32-weight interleaved format's block that precede a row's codes (P in Q4_0x8's comment) and where its chunks start. */
constexpr int qRows8Prefix(QFmt f) { return (qBlockBytes(f) - 2) % 8; }
constexpr int qRows8Chunks(QFmt f) { return (qBlockBytes(f) - 2) / 8; }
constexpr int qRows8CodesAt(QFmt f) { return 16 + kRows8 * qRows8Prefix(f); }
/** Where byte p of row r's prefix lies in an interleaved block: the eight rows' byte p side by side. */
constexpr int qRows8PrefixAt(int p, int r) { return 16 + kRows8 * p + r; }
/**
 * Whether the format's weights are a·c + b with integer codes c (unpackBlock), which the integer
 * dot products multiply. NF4's are levels of a normal's quantiles and F16's are floats: no integer
 * codes, so no unpackBlock and no integer path (quant_linear.cc takes the tiles + GEMM for them at
 * every M: F16's product is then the float32 one of its exactly widened values).
 */
constexpr bool qIntegerCodes(QFmt f) { return f != QFmt::Nf4 && f != QFmt::F16; }
constexpr bool qHasOffset(QFmt f) {
  const QFmt r = qRowFormat(f);
  return !(r == QFmt::Q8_0 || r == QFmt::Q4_0 || r == QFmt::Q5_0 || r == QFmt::Q6_K || r == QFmt::F16);
}
/** Whether each 16 weights have a scale of their own (Q6_K, Q6_Kx8); every other format has one per 32 or more. */
constexpr bool qScalePer16(QFmt f) { return qRowFormat(f) == QFmt::Q6_K; }

inline const QTraits& qtraits(QFmt f) {
  static const QTraits t[] = {
      {"q8_0", 32, 34, false},  {"q4_0", 32, 18, false},  {"q4_1", 32, 20, true},   {"q5_0", 32, 22, false},
      {"q5_1", 32, 24, true},   {"q4_k", 256, 144, true}, {"q5_k", 256, 176, true}, {"q6_k", 256, 210, false},
      {"mlx4", 64, 36, true},   {"mlx8", 64, 68, true},   {"mlx4_f16", 64, 36, true}, {"mlx8_f16", 64, 68, true},
      {"nf4", 64, 33, false},   {"f16", 32, 64, false},   {"q4_0x8", 32, 18, false},
      {"q8_0x8", 32, 34, false}, {"q5_0x8", 32, 22, false}, {"q4_kx8", 256, 144, true}, {"q6_kx8", 256, 210, false},
  };
  static_assert(sizeof t / sizeof t[0] == static_cast<int>(QFmt::Count), "a traits row per format");
  return t[static_cast<int>(f)];
}

/** Bytes of a row of K weights in format f (K whole blocks: the caller has checked). */
inline int64_t qRowBytes(QFmt f, int64_t K) { return K / qtraits(f).blockWeights * qtraits(f).blockBytes; }

/** The largest block's weights (the K-quants' 256): scratch sizes. */
constexpr int kMaxBlockWeights = 256;

inline float floatOfBits(uint32_t bits) {
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

/**
 * IEEE float16 bits → float32, exactly (subnormals, infinities and NaN included), without a branch
 * (a loop over it vectorises: the f16 format's rows): a normal's fields re-biased; a subnormal's
 * mantissa times 2^-24 through an integer conversion (a normal float32, so flushed denormals never
 * touch it); infinities and NaN kept, payload and all.
 */
inline float halfToFloat(uint16_t h) {
  const uint32_t exp = (h >> 10) & 31, man = h & 0x3ff;
  const float normal = floatOfBits(((static_cast<uint32_t>(h) & 0x7fff) << 13) + (112u << 23));
  const float subnormal = static_cast<float>(static_cast<int32_t>(man)) * 5.9604644775390625e-8f;
  const float special = floatOfBits(0x7f800000u | (man << 13));
  const float magnitude = exp == 0 ? subnormal : exp == 31 ? special : normal;
  uint32_t bits;
  std::memcpy(&bits, &magnitude, 4);
  return floatOfBits(bits | (static_cast<uint32_t>(h & 0x8000) << 16));
}

inline float bf16ToFloat(uint16_t h) { return floatOfBits(static_cast<uint32_t>(h) << 16); }

inline uint16_t le16(const uint8_t* p) { return static_cast<uint16_t>(p[0] | (p[1] << 8)); }
inline uint32_t le32(const uint8_t* p) {
  return static_cast<uint32_t>(p[0]) | (static_cast<uint32_t>(p[1]) << 8) | (static_cast<uint32_t>(p[2]) << 16) |
         (static_cast<uint32_t>(p[3]) << 24);
}

/**
 * All eight six-bit scales and mins of a K-quant super-block at once (ggml's get_scale_min_k4 for
 * j = 0..7): its word-wise unpacking of the 12 bytes, which leaves the loops over them free of branches.
 */
inline void kScalesMins(const uint8_t* s, uint8_t sc[8], uint8_t m[8]) {
  constexpr uint32_t low6 = 0x3f3f3f3f, low4 = 0x0f0f0f0f, top2 = 0x03030303;
  uint32_t w[3];
  std::memcpy(w, s, 12);
  const uint32_t scales[2] = {w[0] & low6, (w[2] & low4) | (((w[0] >> 6) & top2) << 4)};
  const uint32_t mins[2] = {w[1] & low6, ((w[2] >> 4) & low4) | (((w[1] >> 6) & top2) << 4)};
  std::memcpy(sc, scales, 8);
  std::memcpy(m, mins, 8);
}

/** kScalesMins' inverse: eight six-bit scales and mins into 12 bytes at s (ggml's packing; every 12 bytes unpack and pack back to themselves). */
inline void packScalesMins(const uint8_t sc[8], const uint8_t m[8], uint8_t* s) {
  for (int j = 0; j < 4; j++) {
    s[j] = static_cast<uint8_t>(sc[j] | ((sc[j + 4] >> 4) << 6));
    s[j + 4] = static_cast<uint8_t>(m[j] | ((m[j + 4] >> 4) << 6));
    s[j + 8] = static_cast<uint8_t>((sc[j + 4] & 15) | ((m[j + 4] & 15) << 4));
  }
}

/** The MLX group's scale and bias (bf16 or f16). */
template <QFmt F>
inline float mlxHalf(const uint8_t* p) {
  return (F == QFmt::Mlx4F16 || F == QFmt::Mlx8F16) ? halfToFloat(le16(p)) : bf16ToFloat(le16(p));
}

/**
 * NF4's 16 levels (bitsandbytes' code book; src/tensor/quant/nf4.ts NF4_LEVELS, float32 values
 * written exactly, so these literals are the same floats).
 */
inline constexpr float kNf4Levels[16] = {
    -1.0f, -0.6961928009986877f, -0.5250730514526367f, -0.39491748809814453f,
    -0.28444138169288635f, -0.18477343022823334f, -0.09105003625154495f, 0.0f,
    0.07958029955625534f, 0.16093020141124725f, 0.24611230194568634f, 0.33791524171829224f,
    0.44070982933044434f, 0.5626170039176941f, 0.7229568362236023f, 1.0f,
};

/** NF4's scale of code c: 0 for c = 0, else (1 + (c & 7)/8) · 2^((c >> 3) − 17), exact in float32. */
inline float nf4Scale(uint8_t c) {
  if (c == 0) return 0.0f;
  // Built from its bits: exponent (c >> 3) − 17 (biased: + 127, always a normal), mantissa (c & 7)/8.
  const uint32_t bits = (static_cast<uint32_t>((c >> 3) - 17 + 127) << 23) | (static_cast<uint32_t>(c & 7) << 20);
  float s;
  std::memcpy(&s, &bits, 4);
  return s;
}

// ---- dequantization (float32, gguf-py's rounding) -----------------------------------------------

template <QFmt F>
inline __attribute__((always_inline)) void dequantizeBlock(const uint8_t* src, float* out) {
  // A local copy: the compiler must assume `out` may overlap a byte pointer, and then keeps the
  // decoding loops scalar (q4_0 dequantized 2.7× slower than q8_0 before this copy).
  uint8_t b[qBlockBytes(F)];
  std::memcpy(b, src, sizeof b);
  if constexpr (F == QFmt::Q8_0) {
    const float d = halfToFloat(le16(b));
    for (int j = 0; j < 32; j++) out[j] = d * static_cast<float>(static_cast<int8_t>(b[2 + j]));
  } else if constexpr (F == QFmt::Q4_0) {
    const float d = halfToFloat(le16(b));
    for (int j = 0; j < 16; j++) {
      out[j] = d * static_cast<float>((b[2 + j] & 15) - 8);
      out[j + 16] = d * static_cast<float>((b[2 + j] >> 4) - 8);
    }
  } else if constexpr (F == QFmt::Q4_1) {
    const float d = halfToFloat(le16(b)), m = halfToFloat(le16(b + 2));
    for (int j = 0; j < 16; j++) {
      const float p0 = d * static_cast<float>(b[4 + j] & 15), p1 = d * static_cast<float>(b[4 + j] >> 4);
      out[j] = p0 + m;
      out[j + 16] = p1 + m;
    }
  } else if constexpr (F == QFmt::Q5_0) {
    const float d = halfToFloat(le16(b));
    const uint32_t qh = le32(b + 2);
    for (int j = 0; j < 32; j++) {
      const int low = j < 16 ? (b[6 + j] & 15) : (b[6 + j - 16] >> 4);
      out[j] = d * static_cast<float>((low | static_cast<int>(((qh >> j) & 1) << 4)) - 16);
    }
  } else if constexpr (F == QFmt::Q5_1) {
    const float d = halfToFloat(le16(b)), m = halfToFloat(le16(b + 2));
    const uint32_t qh = le32(b + 4);
    for (int j = 0; j < 32; j++) {
      const int low = j < 16 ? (b[8 + j] & 15) : (b[8 + j - 16] >> 4);
      const float p = d * static_cast<float>(low | (((qh >> j) & 1) << 4));
      out[j] = p + m;
    }
  } else if constexpr (F == QFmt::Q4_K || F == QFmt::Q5_K) {
    const float d = halfToFloat(le16(b)), dmin = halfToFloat(le16(b + 2));
    uint8_t sc[8], m[8];
    kScalesMins(b + 4, sc, m);
    for (int g = 0; g < 8; g++) {
      const float dl = d * static_cast<float>(sc[g]), ml = dmin * static_cast<float>(m[g]);
      for (int j = 0; j < 32; j++) {
        int q;
        if constexpr (F == QFmt::Q4_K) q = (b[16 + 32 * (g >> 1) + j] >> (4 * (g & 1))) & 15;
        else q = ((b[48 + 32 * (g >> 1) + j] >> (4 * (g & 1))) & 15) | (((b[16 + j] >> g) & 1) << 4);
        const float p = dl * static_cast<float>(q);
        out[32 * g + j] = p - ml;
      }
    }
  } else if constexpr (F == QFmt::Q6_K) {
    const float d = halfToFloat(le16(b + 208));
    for (int e = 0; e < 256; e++) {
      const int h = e >> 7, i = e & 127;
      const int low = (b[64 * h + (i & 63)] >> (4 * (i >> 6))) & 15;
      const int high = (b[128 + 32 * h + (i & 31)] >> (2 * (i >> 5))) & 3;
      const float ds = d * static_cast<float>(static_cast<int8_t>(b[192 + (e >> 4)]));
      out[e] = ds * static_cast<float>((low | (high << 4)) - 32);
    }
  } else if constexpr (F == QFmt::Nf4) {
    // One float32 product per weight, as nf4.ts's Math.fround(level · scale).
    const float s = nf4Scale(b[0]);
    for (int j = 0; j < 32; j++) out[j] = kNf4Levels[b[1 + j] & 15] * s;
    for (int j = 0; j < 32; j++) out[j + 32] = kNf4Levels[b[1 + j] >> 4] * s;
  } else if constexpr (F == QFmt::F16) {
    for (int j = 0; j < 32; j++) out[j] = halfToFloat(le16(b + 2 * j));
  } else {
    constexpr bool four = F == QFmt::Mlx4 || F == QFmt::Mlx4F16;
    const float s = mlxHalf<F>(b), bias = mlxHalf<F>(b + 2);
    for (int i = 0; i < 64; i++) {
      const int q = four ? (b[4 + (i >> 1)] >> (4 * (i & 1))) & 15 : b[4 + i];
      const float p = s * static_cast<float>(q);
      out[i] = p + bias;
    }
  }
}

/** A Q6_K super-block's 256 six-bit codes (0..63, weight order) into its ql (128 bytes) and qh (64) at q: ggml's packing. */
inline void packQ6KCodes(const uint8_t* codes, uint8_t* q) {
  for (int h = 0; h < 2; h++)
    for (int l = 0; l < 32; l++) {
      const uint8_t* c = codes + 128 * h + l;
      q[64 * h + l] = static_cast<uint8_t>((c[0] & 15) | ((c[64] & 15) << 4));
      q[64 * h + 32 + l] = static_cast<uint8_t>((c[32] & 15) | ((c[96] & 15) << 4));
      q[128 + 32 * h + l] = static_cast<uint8_t>((c[0] >> 4) | ((c[32] >> 4) << 2) | ((c[64] >> 4) << 4) | ((c[96] >> 4) << 6));
    }
}

// ---- integer codes for the dot products ----------------------------------------------------------

/**
 * The block's codes c (int8) and, per 16 weights, scale a[] and offset b[] (b left untouched for the
 * symmetric formats, whose traits say offset = false): w = a·c + b up to the float32 rounding of a
 * and b (the dequantized value rounds a·c and the sum besides).
 */
/**
 * The legacy formats' unpacking steps in portable C++; each ISA's kernel may pass its own (the
 * compiler builds these 16-byte loops from byte inserts: q4_0's product ran 10× slower than q8_0's).
 */
struct ScalarUnpack {
  /** A float16 scale as float32 (x86 F16C and NEON convert it in one instruction). */
  static inline float half(uint16_t h) { return halfToFloat(h); }
  /** c[j] = low nibble of q[j] − bias, c[j + 16] = its high nibble − bias (j < 16). */
  static inline void nibbles16(const uint8_t* q, int8_t* c, int bias) {
    // Two loops, one store each: the compiler vectorises these (one loop with both stores it did not).
    for (int j = 0; j < 16; j++) c[j] = static_cast<int8_t>((q[j] & 15) - bias);
    for (int j = 0; j < 16; j++) c[j + 16] = static_cast<int8_t>((q[j] >> 4) - bias);
  }
  /** MLX's packing: c[2j] = low nibble of q[j], c[2j + 1] = its high nibble (j < 16). */
  static inline void nibblesPaired16(const uint8_t* q, int8_t* c) {
    for (int j = 0; j < 16; j++) {
      c[2 * j] = static_cast<int8_t>(q[j] & 15);
      c[2 * j + 1] = static_cast<int8_t>(q[j] >> 4);
    }
  }
  /** The K-quants' layout: c[j] = low nibble of q[j], c[j + 32] = its high nibble (j < 32). */
  static inline void nibbles32(const uint8_t* q, int8_t* c) {
    for (int j = 0; j < 32; j++) c[j] = static_cast<int8_t>(q[j] & 15);
    for (int j = 0; j < 32; j++) c[j + 32] = static_cast<int8_t>(q[j] >> 4);
  }
  /**
   * Q6_K's 128 codes of one half super-block: ql 64 bytes of low nibbles, qh 32 bytes of 2-bit
   * highs, each code − 32 (ggml's order: ql[l] low, ql[l+32] low, ql[l] high, ql[l+32] high).
   */
  static inline void q6Codes128(const uint8_t* ql, const uint8_t* qh, int8_t* o) {
    for (int l = 0; l < 32; l++) o[l] = static_cast<int8_t>(((ql[l] & 15) | ((qh[l] & 3) << 4)) - 32);
    for (int l = 0; l < 32; l++) o[l + 32] = static_cast<int8_t>(((ql[l + 32] & 15) | (((qh[l] >> 2) & 3) << 4)) - 32);
    for (int l = 0; l < 32; l++) o[l + 64] = static_cast<int8_t>(((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32);
    for (int l = 0; l < 32; l++) o[l + 96] = static_cast<int8_t>(((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32);
  }
  /** c[j] += 16·(bit j of qh) − bias (j < 32). */
  static inline void fifthBits32(uint32_t qh, int8_t* c, int bias) {
    for (int j = 0; j < 32; j++) c[j] = static_cast<int8_t>(c[j] + static_cast<int>(((qh >> j) & 1) << 4) - bias);
  }
  /** Q5_K's codes of 32 bytes of nibbles: c[j] = low nibble of q[j] + 16·(bit `bit` of qh[j]), c[j + 32] = its high + 16·(bit `bit` + 1) (j < 32). */
  static inline __attribute__((always_inline)) void q5kCodes64(const uint8_t* q, const uint8_t* qh, int bit, int8_t* c) {
    for (int j = 0; j < 32; j++) {
      c[j] = static_cast<int8_t>((q[j] & 15) | (((qh[j] >> bit) & 1) << 4));
      c[j + 32] = static_cast<int8_t>((q[j] >> 4) | (((qh[j] >> (bit + 1)) & 1) << 4));
    }
  }
};

template <QFmt F, class U = ScalarUnpack>
inline __attribute__((always_inline)) void unpackBlock(const uint8_t* src, int8_t* c, float* a, float* off) {
  static_assert(qIntegerCodes(F), "the format has no integer codes (NF4, F16): decode it with dequantizeBlock");
  uint8_t b[qBlockBytes(F)];  // a local copy, as in dequantizeBlock: the int8 codes may not alias it
  std::memcpy(b, src, sizeof b);
  if constexpr (F == QFmt::Q8_0) {
    std::memcpy(c, b + 2, 32);
    a[0] = a[1] = U::half(le16(b));
  } else if constexpr (F == QFmt::Q4_0 || F == QFmt::Q4_1) {
    constexpr int at = F == QFmt::Q4_0 ? 2 : 4;
    U::nibbles16(b + at, c, F == QFmt::Q4_0 ? 8 : 0);
    a[0] = a[1] = U::half(le16(b));
    if constexpr (F == QFmt::Q4_1) off[0] = off[1] = U::half(le16(b + 2));
  } else if constexpr (F == QFmt::Q5_0 || F == QFmt::Q5_1) {
    constexpr int hAt = F == QFmt::Q5_0 ? 2 : 4, at = hAt + 4;
    U::nibbles16(b + at, c, 0);
    U::fifthBits32(le32(b + hAt), c, F == QFmt::Q5_0 ? 16 : 0);
    a[0] = a[1] = U::half(le16(b));
    if constexpr (F == QFmt::Q5_1) off[0] = off[1] = U::half(le16(b + 2));
  } else if constexpr (F == QFmt::Q4_K || F == QFmt::Q5_K) {
    const float d = U::half(le16(b)), dmin = U::half(le16(b + 2));
    if constexpr (F == QFmt::Q4_K) {
      for (int p = 0; p < 4; p++) U::nibbles32(b + 16 + 32 * p, c + 64 * p);
    } else {
      // Unrolled so each call's bit is a constant (through a loop the portable build ran 0.8x as fast).
      U::q5kCodes64(b + 48, b + 16, 0, c);
      U::q5kCodes64(b + 80, b + 16, 2, c + 64);
      U::q5kCodes64(b + 112, b + 16, 4, c + 128);
      U::q5kCodes64(b + 144, b + 16, 6, c + 192);
    }
    uint8_t sc[8], m[8];
    kScalesMins(b + 4, sc, m);
    for (int g = 0; g < 16; g++) {
      a[g] = d * static_cast<float>(sc[g >> 1]);
      off[g] = -(dmin * static_cast<float>(m[g >> 1]));
    }
  } else if constexpr (F == QFmt::Q6_K) {
    const float d = U::half(le16(b + 208));
    for (int h = 0; h < 2; h++) U::q6Codes128(b + 64 * h, b + 128 + 32 * h, c + 128 * h);
    for (int g = 0; g < 16; g++) a[g] = d * static_cast<float>(static_cast<int8_t>(b[192 + g]));
  } else {
    constexpr bool four = F == QFmt::Mlx4 || F == QFmt::Mlx4F16;
    const float s = mlxHalf<F>(b), bias = mlxHalf<F>(b + 2);
    if constexpr (four) {
      U::nibblesPaired16(b + 4, c);
      U::nibblesPaired16(b + 20, c + 32);
    } else {
      // 0..255 does not fit int8: c = q − 128, and the 128·s moves into the offset.
      for (int i = 0; i < 64; i++) c[i] = static_cast<int8_t>(static_cast<int>(b[4 + i]) - 128);
    }
    const float o = four ? bias : bias + 128.0f * s;
    for (int g = 0; g < 4; g++) {
      a[g] = s;
      off[g] = o;
    }
  }
}

}  // namespace sc
