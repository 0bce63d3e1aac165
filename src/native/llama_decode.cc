// One Llama decoder block for one decode position of one sequence, in a single call: what a
// batch-1 decode step runs thirty-odd times a token. Op by op the block is some twenty engine ops
// (norms, seven products, rotations, the cache's attention, residual adds), each a JavaScript op
// with its own tensors and N-API crossing (~2-4 µs); at batch 1 on SmolLM2-135M's shape they were a
// quarter of a Q4_0 token's time, as much as the gap to llama.cpp (docs/QUANTIZE.md). Here the same
// kernels run in the same order on the same values (quantLinearProduct, sgemm, or a bf16 step's
// toBf16 + gemmBf16; rmsNormRow, rotateRows, attentionDecode over a float32 or bf16 cache,
// siluMulRange), so the block's output is bit for bit the ops'
// (test/nn/layers/llama_fused_decode.test.ts holds them equal).
#include <cstdint>
#include <string>
#include <vector>

#include "attention_decode.h"
#include "bf16.h"
#include "gemm.h"
#include "llama_rows.h"
#include "napi_args.h"
#include "quant_blocks.h"
#include "quant_linear.h"
#include "registry.h"

namespace sc {
namespace {

/** The seven products of a block, in the order their formats and weights are passed. */
enum Proj { kQ, kK, kV, kO, kGate, kUp, kDown, kProjections };
const char* const kProjNames[kProjections] = {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"};

struct Block {
  int64_t width, heads, kvHeads, headDim, inner, tk, cap;
};

/** The sizes' format codes of a float32 weight and of a bf16 step's bf16 weight (the others are QFmt's). */
constexpr int64_t kFloat32 = -1;
constexpr int64_t kBfloat16 = -2;

/** One product's weight: quantized blocks in format f, float32 values (dense), or bf16 ones (half: x is rounded to bf16 too). */
struct Product {
  QFmt f;
  const uint8_t* w;
  const float* dense;
  const uint16_t* half;
  const float* bias;
  int64_t N, K;
};

/** The sizes (argument 0): [width, heads, kvHeads, headDim, intermediate, tk, kvCapacity, 7 formats, kv cache in bf16]. */
constexpr size_t kSizes = 7 + kProjections + 1;

/** The block's sizes (argument 0) checked. */
Block blockArg(const Args& a, const double* s) {
  const Block b{static_cast<int64_t>(s[0]), static_cast<int64_t>(s[1]), static_cast<int64_t>(s[2]), static_cast<int64_t>(s[3]),
                static_cast<int64_t>(s[4]), static_cast<int64_t>(s[5]), static_cast<int64_t>(s[6])};
  const std::string fn = a.fn();
  if (b.width < 1 || b.heads < 1 || b.kvHeads < 1 || b.headDim < 2 || b.inner < 1) throwRange(fn + ": sizes must be positive");
  if (b.heads % b.kvHeads != 0) throwRange(fn + ": " + std::to_string(b.heads) + " heads are not a multiple of " + std::to_string(b.kvHeads) + " kv heads");
  if (b.headDim % 2 != 0) throwRange(fn + ": the head dimension must be even, got " + std::to_string(b.headDim));
  if (b.tk < 1 || b.tk > b.cap) throwRange(fn + ": position " + std::to_string(b.tk - 1) + " is outside the cache's " + std::to_string(b.cap) + " positions");
  return b;
}

/** Product p's weight (argument i) and bias (argument biasArg, or none), its sizes checked against its format's blocks. */
Product productArg(Args& a, const double* s, int p, size_t i, int biasArg, int64_t N, int64_t K) {
  F32 bias;
  if (biasArg >= 0) {
    bias = a.f32OrNull(static_cast<size_t>(biasArg), "bias");
    if (bias.p) a.need(bias, N, "bias");
  }
  const int64_t format = static_cast<int64_t>(s[7 + p]);
  if (format == kFloat32) {
    const F32 w = a.f32(i, kProjNames[p]);
    a.need(w, N * K, kProjNames[p]);
    return Product{QFmt::Count, nullptr, w.p, nullptr, bias.p, N, K};
  }
  if (format == kBfloat16) {
    const U16 w = a.u16(i, kProjNames[p]);
    a.need(w, N * K, kProjNames[p]);
    return Product{QFmt::Count, nullptr, nullptr, w.p, bias.p, N, K};
  }
  if (format < 0 || format >= static_cast<int64_t>(QFmt::Count)) throwRange(std::string(a.fn()) + ": " + kProjNames[p] + " has no format " + std::to_string(format));
  const QFmt f = static_cast<QFmt>(format);
  const QTraits& t = qtraits(f);
  if (K % t.blockWeights != 0)
    throwRange(std::string(a.fn()) + ": " + kProjNames[p] + "'s rows of " + std::to_string(K) + " are not whole " + t.name + " blocks");
  const U8 w = a.u8(i, kProjNames[p]);
  if (w.n < N * qRowBytes(f, K))
    throwRange(std::string(a.fn()) + ": " + kProjNames[p] + " has " + std::to_string(w.n) + " bytes, too few for [" + std::to_string(N) + ", " +
               std::to_string(K) + "] in " + t.name);
  return Product{f, w.p, nullptr, nullptr, bias.p, N, K};
}

thread_local std::vector<uint16_t> t_xBf16;

/** A bf16 step's product: x rounded to bf16 (autocast's cast) times the bf16 weight, float32 out (the linear op's gemmBf16). */
void runBf16(const Product& p, const float* x, float* y) {
  if (t_xBf16.size() < static_cast<size_t>(p.K)) t_xBf16.resize(static_cast<size_t>(p.K));
  toBf16(x, t_xBf16.data(), p.K);
  GemmBf16 g;
  g.transB = true;
  g.M = 1;
  g.N = p.N;
  g.K = p.K;
  g.A = t_xBf16.data();
  g.B = p.half;
  g.C = y;
  g.bias = p.bias;
  gemmBf16(g);
}

/**
 * y = x · Wᵀ (+ bias) for one row of x, as the linear op takes it at inference: quantLinear's product
 * (x quantized once for the products that share it), the float32 GEMM's, or the bf16 one's.
 */
void run(const Product& p, ActivationRows& in, float* y) {
  const float* x = in.x();
  if (p.half) return runBf16(p, x, y);
  if (!p.dense) return quantLinearProduct(p.f, p.w, in, p.N, p.bias, y, false, false);
  Gemm g;
  g.transB = true;
  g.M = 1;
  g.N = p.N;
  g.K = p.K;
  g.A = x;
  g.lda = p.K;
  g.B = p.dense;
  g.ldb = p.K;
  g.C = y;
  g.ldc = p.N;
  g.bias = p.bias;
  sgemm(g);
}

/** Each of `rows` rows of `cols` normalised by w (Qwen3's per-head q/k norms), into out. */
void normRows(const float* x, const float* w, int64_t rows, int64_t cols, double eps, float* out) {
  float inv;
  for (int64_t r = 0; r < rows; r++) rmsNormRow(x + r * cols, w, cols, eps, out + r * cols, &inv);
}

thread_local std::vector<float> t_scratch;

// llamaDecodeLayer(sizes, eps, scale, x, out, inNorm, postNorm, qNorm|null, kNorm|null,
//                  wq, wk, wv, wo, wGate, wUp, wDown, bq|null, bk|null, bv|null, cos, sin, kCache, vCache)
// sizes: Float64Array [width, heads, kvHeads, headDim, intermediate, tk, kvCapacity, the seven
// products' formats (QFmt; −1: float32 values, a Float32Array; −2: bf16 values, a Uint16Array, x
// rounded to bf16 for them), 1 where the cache holds bf16]; x, out [width]; cos, sin [headDim/2]
// (the position's rotary row); the cache [kvHeads, kvCapacity, headDim] each (float32, or bf16 in
// a Uint16Array), its position tk − 1 written here.
// out = h + mlp(norm(h)), h = x + o_proj(attention(rope(q), rope(k), v)) over norm(x).
napi_value LlamaDecodeLayerKernel(Args& a) {
  const double* s = a.ints(0, "sizes", kSizes);
  const Block b = blockArg(a, s);
  const double eps = a.num(1, "eps"), scale = a.num(2, "scale");
  const int64_t D = b.headDim, qWidth = b.heads * D, kvWidth = b.kvHeads * D;
  const F32 x = a.f32(3, "x"), out = a.f32(4, "out"), inNorm = a.f32(5, "inNorm"), postNorm = a.f32(6, "postNorm");
  const F32 qNorm = a.f32OrNull(7, "qNorm"), kNorm = a.f32OrNull(8, "kNorm");
  a.need(x, b.width, "x");
  a.need(out, b.width, "out");
  a.need(inNorm, b.width, "inNorm");
  a.need(postNorm, b.width, "postNorm");
  if (qNorm.p) a.need(qNorm, D, "qNorm");
  if (kNorm.p) a.need(kNorm, D, "kNorm");
  const Product prods[kProjections] = {
      productArg(a, s, kQ, 9, 16, qWidth, b.width),        productArg(a, s, kK, 10, 17, kvWidth, b.width),
      productArg(a, s, kV, 11, 18, kvWidth, b.width),      productArg(a, s, kO, 12, -1, b.width, qWidth),
      productArg(a, s, kGate, 13, -1, b.inner, b.width), productArg(a, s, kUp, 14, -1, b.inner, b.width),
      productArg(a, s, kDown, 15, -1, b.width, b.inner),
  };
  const F32 cosT = a.f32(19, "cos"), sinT = a.f32(20, "sin");
  a.need(cosT, D / 2, "cos");
  a.need(sinT, D / 2, "sin");
  const bool cacheBf16 = s[kSizes - 1] != 0;
  const int64_t cached = b.kvHeads * b.cap * D;
  F32 kCache, vCache;
  U16 kHalf, vHalf;
  if (cacheBf16) {
    kHalf = a.u16(21, "kCache"), vHalf = a.u16(22, "vCache");
    a.need(kHalf, cached, "kCache");
    a.need(vHalf, cached, "vCache");
  } else {
    kCache = a.f32(21, "kCache"), vCache = a.f32(22, "vCache");
    a.need(kCache, cached, "kCache");
    a.need(vCache, cached, "vCache");
  }

  const int64_t w = b.width, I = b.inner;
  const size_t need = static_cast<size_t>(3 * w + 3 * qWidth + 3 * kvWidth + 3 * I);
  if (t_scratch.size() < need) t_scratch.resize(need);
  float* h = t_scratch.data();  // norm(x), then norm(mid)
  float* mid = h + w;           // x + attention
  float* prod = mid + w;        // o_proj's, then down_proj's output
  float* q = prod + w;
  float* qTurned = q + qWidth;
  float* att = qTurned + qWidth;
  float* k = att + qWidth;
  float* kTurned = k + kvWidth;
  float* v = kTurned + kvWidth;
  float* gate = v + kvWidth;
  float* up = gate + I;
  float* act = up + I;

  // The products' inputs: q, k and v share norm(x), gate and up norm(mid), each quantized once.
  thread_local ActivationRows normed, attended, normedMid, activated;
  float inv;
  rmsNormRow(x.p, inNorm.p, w, eps, h, &inv);
  normed.reset(h, 1, w);
  run(prods[kQ], normed, q);
  run(prods[kK], normed, k);
  run(prods[kV], normed, v);
  // Qwen3's norms write into the rotation's output, which the rotation then reads and writes back into q/k.
  const float* qIn = q;
  const float* kIn = k;
  if (qNorm.p) normRows(q, qNorm.p, b.heads, D, eps, qTurned), qIn = qTurned;
  if (kNorm.p) normRows(k, kNorm.p, b.kvHeads, D, eps, kTurned), kIn = kTurned;
  float* qRot = qIn == q ? qTurned : q;
  float* kRot = kIn == k ? kTurned : k;
  rotateRows(qIn, cosT.p, sinT.p, 1, D / 2, 1.0f, false, 0, b.heads, qRot);
  rotateRows(kIn, cosT.p, sinT.p, 1, D / 2, 1.0f, false, 0, b.kvHeads, kRot);
  const AttentionGeometry g{b.heads, 1, b.tk, D, D, b.heads / b.kvHeads, static_cast<float>(scale), false, b.cap};
  if (cacheBf16) attentionDecode(g, qRot, kRot, v, kHalf.p, vHalf.p, att);
  else attentionDecode(g, qRot, kRot, v, kCache.p, vCache.p, att);
  attended.reset(att, 1, qWidth);
  run(prods[kO], attended, prod);
  for (int64_t j = 0; j < w; j++) mid[j] = x.p[j] + prod[j];
  rmsNormRow(mid, postNorm.p, w, eps, h, &inv);
  normedMid.reset(h, 1, w);
  run(prods[kGate], normedMid, gate);
  run(prods[kUp], normedMid, up);
  siluMulRange(gate, up, act, 0, I);
  activated.reset(act, 1, I);
  run(prods[kDown], activated, prod);
  for (int64_t j = 0; j < w; j++) out.p[j] = mid[j] + prod[j];
  return undefinedValue(a.env());
}

}  // namespace

void registerLlamaDecode(napi_env env, napi_value exports) { defineFunction(env, exports, "llamaDecodeLayer", entry<LlamaDecodeLayerKernel>); }

}  // namespace sc
