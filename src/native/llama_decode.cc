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
#include <memory>
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

/** A block's shape: [width, heads, kvHeads, headDim, intermediate] as the sizes pass it. */
struct Shape {
  int64_t width, heads, kvHeads, headDim, inner;
};

/** A block's weights, norms and biases as one step reads them (what a plan keeps from step to step). */
struct BlockWeights {
  Shape shape;
  double eps;
  float scale;
  const float *inNorm, *postNorm, *qNorm, *kNorm;
  Product prods[kProjections];
};

/** A step's place in one block's cache: the positions it holds with this one (tk) and has room for, the rotary row, the cache. */
struct StepCache {
  int64_t tk, cap;
  const float *cos, *sin;
  float *k, *v;
  uint16_t *kHalf, *vHalf;  // a bf16 cache's, else null
};

/** The shape (five sizes from s) checked. */
Shape shapeArg(const Args& a, const double* s) {
  const Shape b{static_cast<int64_t>(s[0]), static_cast<int64_t>(s[1]), static_cast<int64_t>(s[2]), static_cast<int64_t>(s[3]), static_cast<int64_t>(s[4])};
  const std::string fn = a.fn();
  if (b.width < 1 || b.heads < 1 || b.kvHeads < 1 || b.headDim < 2 || b.inner < 1) throwRange(fn + ": sizes must be positive");
  if (b.heads % b.kvHeads != 0) throwRange(fn + ": " + std::to_string(b.heads) + " heads are not a multiple of " + std::to_string(b.kvHeads) + " kv heads");
  if (b.headDim % 2 != 0) throwRange(fn + ": the head dimension must be even, got " + std::to_string(b.headDim));
  return b;
}

/** Product p's weight (argument i, in format code `format`) and bias (argument biasArg, or none), its sizes checked against its format's blocks. */
Product productArg(Args& a, int64_t format, int p, size_t i, int biasArg, int64_t N, int64_t K) {
  F32 bias;
  if (biasArg >= 0) {
    bias = a.f32OrNull(static_cast<size_t>(biasArg), "bias");
    if (bias.p) a.need(bias, N, "bias");
  }
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

/** The number of a block's buffers from inNorm on: inNorm, postNorm, qNorm|null, kNorm|null, the seven weights, bq|null, bk|null, bv|null. */
constexpr size_t kBlockBuffers = 4 + kProjections + 3;

/** A block's weights from its kBlockBuffers buffers, arguments at..at + 13 of a, in the seven formats' codes, checked against its shape. */
BlockWeights weightsArg(Args& a, size_t at, const Shape& b, const double* formats, double eps, double scale) {
  const int64_t D = b.headDim, qWidth = b.heads * D, kvWidth = b.kvHeads * D;
  const F32 inNorm = a.f32(at, "inNorm"), postNorm = a.f32(at + 1, "postNorm");
  const F32 qNorm = a.f32OrNull(at + 2, "qNorm"), kNorm = a.f32OrNull(at + 3, "kNorm");
  a.need(inNorm, b.width, "inNorm");
  a.need(postNorm, b.width, "postNorm");
  if (qNorm.p) a.need(qNorm, D, "qNorm");
  if (kNorm.p) a.need(kNorm, D, "kNorm");
  const auto format = [&](int p) { return static_cast<int64_t>(formats[p]); };
  const size_t w = at + 4, bias = at + 4 + kProjections;
  const int ib = static_cast<int>(bias);
  return BlockWeights{b, eps, static_cast<float>(scale), inNorm.p, postNorm.p, qNorm.p, kNorm.p,
                      {productArg(a, format(kQ), kQ, w + kQ, ib, qWidth, b.width), productArg(a, format(kK), kK, w + kK, ib + 1, kvWidth, b.width),
                       productArg(a, format(kV), kV, w + kV, ib + 2, kvWidth, b.width), productArg(a, format(kO), kO, w + kO, -1, b.width, qWidth),
                       productArg(a, format(kGate), kGate, w + kGate, -1, b.inner, b.width), productArg(a, format(kUp), kUp, w + kUp, -1, b.inner, b.width),
                       productArg(a, format(kDown), kDown, w + kDown, -1, b.width, b.inner)}};
}

/** One of a block's caches, argument i: [kvHeads, cap, headDim] float32 values, or bf16 ones in a Uint16Array. */
struct CacheBuffer {
  float* values;
  uint16_t* half;
};

CacheBuffer cacheBufferArg(Args& a, size_t i, const char* name, const Shape& b, int64_t cap, bool bf16) {
  const int64_t cached = b.kvHeads * cap * b.headDim;
  if (bf16) {
    const U16 c = a.u16(i, name);
    a.need(c, cached, name);
    return {nullptr, c.p};
  }
  const F32 c = a.f32(i, name);
  a.need(c, cached, name);
  return {c.p, nullptr};
}

/** A step's place in a block's cache (k and v: arguments kAt of ka and vAt of va), its rotary row and its positions, checked. */
StepCache cacheArg(Args& ka, size_t kAt, Args& va, size_t vAt, const Shape& b, int64_t tk, int64_t cap, bool bf16, const F32& cosT, const F32& sinT) {
  if (tk < 1 || tk > cap) throwRange(std::string(ka.fn()) + ": position " + std::to_string(tk - 1) + " is outside the cache's " + std::to_string(cap) + " positions");
  const CacheBuffer k = cacheBufferArg(ka, kAt, "kCache", b, cap, bf16), v = cacheBufferArg(va, vAt, "vCache", b, cap, bf16);
  return StepCache{tk, cap, cosT.p, sinT.p, k.values, v.values, k.half, v.half};
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

/** Whether b's blocks follow a's in memory in a's interleaved format and row length: the two read as one matrix. */
bool backToBack(const Product& a, const Product& b) {
  return a.w && b.w && a.f == b.f && qRows8(a.f) && a.K == b.K && a.w + a.N * qRowBytes(a.f, a.K) == b.w;
}

/**
 * The products p[0..n), one input, their outputs back to back from y: a run of them whose weights
 * lie back to back (a generator's load places a block's matrices in order: gguf_llama.ts) as one
 * product, one set of streams over all their rows. Each row's value depends on its own blocks
 * alone (quant_rows8.h), and a bias is the same float addition after as inside, so the values are
 * the products' one by one. SmolLM2-135M's 210 small Q4_0 matrices read from memory at 18-23 GB/s
 * one by one and 24-25 with q, k, v and gate, up as one (one thread, the AMD EPYC, a /tmp harness).
 */
void runBackToBack(const Product* p, int n, ActivationRows& in, float* y) {
  for (int i = 0; i < n;) {
    int j = i + 1;
    Product merged = p[i];
    while (j < n && backToBack(p[j - 1], p[j])) merged.N += p[j++].N;
    if (j - i == 1) {
      run(p[i], in, y);
    } else {
      merged.bias = nullptr;
      run(merged, in, y);
      float* out = y;
      for (int m = i; m < j; out += p[m++].N)
        if (p[m].bias)
          for (int64_t r = 0; r < p[m].N; r++) out[r] += p[m].bias[r];
    }
    y += merged.N;
    i = j;
  }
}

/** Each of `rows` rows of `cols` normalised by w (Qwen3's per-head q/k norms), into out. */
void normRows(const float* x, const float* w, int64_t rows, int64_t cols, double eps, float* out) {
  float inv;
  for (int64_t r = 0; r < rows; r++) rmsNormRow(x + r * cols, w, cols, eps, out + r * cols, &inv);
}

thread_local std::vector<float> t_scratch;

/**
 * out = h + mlp(norm(h)), h = x + o_proj(attention(rope(q), rope(k), v)) over norm(x), the
 * position's k and v stored at tk − 1 of the cache. x and out may be the same row (x is read before
 * out is written).
 */
void decodeBlock(const BlockWeights& bw, const StepCache& c, const float* x, float* out) {
  const Shape& b = bw.shape;
  const Product* prods = bw.prods;
  const int64_t D = b.headDim, qWidth = b.heads * D, kvWidth = b.kvHeads * D;
  const int64_t w = b.width, I = b.inner;
  const double eps = bw.eps;
  const size_t need = static_cast<size_t>(3 * w + 3 * qWidth + 3 * kvWidth + 3 * I);
  if (t_scratch.size() < need) t_scratch.resize(need);
  float* h = t_scratch.data();  // norm(x), then norm(mid)
  float* mid = h + w;           // x + attention
  float* prod = mid + w;        // o_proj's, then down_proj's output
  float* q = prod + w;  // q, k and v back to back, as one product may write them (runBackToBack)
  float* k = q + qWidth;
  float* v = k + kvWidth;
  float* qTurned = v + kvWidth;
  float* kTurned = qTurned + qWidth;
  float* att = kTurned + kvWidth;
  float* gate = att + qWidth;  // gate and up likewise
  float* up = gate + I;
  float* act = up + I;

  // The products' inputs: q, k and v share norm(x), gate and up norm(mid), each quantized once.
  thread_local ActivationRows normed, attended, normedMid, activated;
  float inv;
  rmsNormRow(x, bw.inNorm, w, eps, h, &inv);
  normed.reset(h, 1, w);
  runBackToBack(prods + kQ, 3, normed, q);
  // Qwen3's norms write into the rotation's output, which the rotation then reads and writes back into q/k.
  const float* qIn = q;
  const float* kIn = k;
  if (bw.qNorm) normRows(q, bw.qNorm, b.heads, D, eps, qTurned), qIn = qTurned;
  if (bw.kNorm) normRows(k, bw.kNorm, b.kvHeads, D, eps, kTurned), kIn = kTurned;
  float* qRot = qIn == q ? qTurned : q;
  float* kRot = kIn == k ? kTurned : k;
  rotateRows(qIn, c.cos, c.sin, 1, D / 2, 1.0f, false, 0, b.heads, qRot);
  rotateRows(kIn, c.cos, c.sin, 1, D / 2, 1.0f, false, 0, b.kvHeads, kRot);
  const AttentionGeometry g{b.heads, 1, c.tk, D, D, b.heads / b.kvHeads, bw.scale, false, c.cap};
  if (c.kHalf) attentionDecode(g, qRot, kRot, v, c.kHalf, c.vHalf, att);
  else attentionDecode(g, qRot, kRot, v, c.k, c.v, att);
  attended.reset(att, 1, qWidth);
  run(prods[kO], attended, prod);
  for (int64_t j = 0; j < w; j++) mid[j] = x[j] + prod[j];
  rmsNormRow(mid, bw.postNorm, w, eps, h, &inv);
  normedMid.reset(h, 1, w);
  runBackToBack(prods + kGate, 2, normedMid, gate);
  siluMulRange(gate, up, act, 0, I);
  activated.reset(act, 1, I);
  run(prods[kDown], activated, prod);
  for (int64_t j = 0; j < w; j++) out[j] = mid[j] + prod[j];
}

/** The sizes of llamaDecodeLayer (argument 0): [width, heads, kvHeads, headDim, intermediate, tk, kvCapacity, 7 formats, kv cache in bf16]. */
constexpr size_t kSizes = 7 + kProjections + 1;

// llamaDecodeLayer(sizes, eps, scale, x, out, inNorm, postNorm, qNorm|null, kNorm|null,
//                  wq, wk, wv, wo, wGate, wUp, wDown, bq|null, bk|null, bv|null, cos, sin, kCache, vCache)
// sizes: Float64Array [width, heads, kvHeads, headDim, intermediate, tk, kvCapacity, the seven
// products' formats (QFmt; −1: float32 values, a Float32Array; −2: bf16 values, a Uint16Array, x
// rounded to bf16 for them), 1 where the cache holds bf16]; x, out [width]; cos, sin [headDim/2]
// (the position's rotary row); the cache [kvHeads, kvCapacity, headDim] each (float32, or bf16 in
// a Uint16Array), its position tk − 1 written here.
napi_value LlamaDecodeLayerKernel(Args& a) {
  const double* s = a.ints(0, "sizes", kSizes);
  const Shape b = shapeArg(a, s);
  const BlockWeights bw = weightsArg(a, 5, b, s + 7, a.num(1, "eps"), a.num(2, "scale"));
  const F32 x = a.f32(3, "x"), out = a.f32(4, "out");
  a.need(x, b.width, "x");
  a.need(out, b.width, "out");
  const F32 cosT = a.f32(19, "cos"), sinT = a.f32(20, "sin");
  a.need(cosT, b.headDim / 2, "cos");
  a.need(sinT, b.headDim / 2, "sin");
  const StepCache c = cacheArg(a, 21, a, 22, b, static_cast<int64_t>(s[5]), static_cast<int64_t>(s[6]), s[kSizes - 1] != 0, cosT, sinT);
  decodeBlock(bw, c, x.p, out.p);
  return undefinedValue(a.env());
}

/**
 * A stack of blocks' weights checked once (llamaDecodePlan) and run a step at a time in one call
 * (llamaDecodeStack): at batch 1 each block's call cost its JavaScript (the cache's slot, the
 * rotary row, the call's arrays) and its N-API checks (23 arguments) again every token. The plan
 * holds raw pointers: the JavaScript object that holds it holds every buffer too (a plan is made
 * again when a weight's buffer changes).
 */
struct DecodePlan {
  std::vector<BlockWeights> blocks;
};

void finalizePlan(napi_env, void* data, void*) { delete static_cast<DecodePlan*>(data); }

// llamaDecodePlan(sizes, eps, scale, buffers)
// sizes: Float64Array [layers, width, heads, kvHeads, headDim, intermediate, then each layer's seven
// formats (llamaDecodeLayer's codes)]; buffers: an array of kBlockBuffers a layer, in llamaDecodeLayer's
// order from inNorm (inNorm, postNorm, qNorm|null, kNorm|null, wq … wDown, bq|null, bk|null, bv|null).
napi_value LlamaDecodePlanKernel(Args& a) {
  const double* head = a.ints(0, "sizes", 6);
  const int64_t layers = static_cast<int64_t>(head[0]);
  if (layers < 1 || layers > (int64_t{1} << 20)) throwRange(std::string(a.fn()) + ": layers must be positive");
  const double* s = a.ints(0, "sizes", 6 + kProjections * layers);
  const Shape b = shapeArg(a, s + 1);
  const double eps = a.num(1, "eps"), scale = a.num(2, "scale");
  auto plan = std::make_unique<DecodePlan>();
  for (int64_t l = 0; l < layers; l++) {
    const std::string where = std::string(a.fn()) + " (layer " + std::to_string(l) + ")";
    Args layer(a.env(), where.c_str(), a.value(3), static_cast<uint32_t>(l * kBlockBuffers), static_cast<uint32_t>(kBlockBuffers));
    plan->blocks.push_back(weightsArg(layer, 0, b, s + 6 + kProjections * l, eps, scale));
  }
  napi_value handle;
  if (napi_create_external(a.env(), plan.get(), finalizePlan, nullptr, &handle) != napi_ok) throwRange(std::string(a.fn()) + ": could not make the plan's handle");
  plan.release();
  return handle;
}

// llamaDecodeStack(plan, step, x, out, cos, sin, kCaches, vCaches)
// step: Float64Array [tk, kvCapacity, 1 where the caches hold bf16], every layer's alike; x, out
// [width]: the first block's input and the last one's output (the blocks between run in out);
// kCaches, vCaches: arrays of the layers' caches (llamaDecodeLayer's).
napi_value LlamaDecodeStackKernel(Args& a) {
  const DecodePlan& plan = *static_cast<const DecodePlan*>(a.external(0, "plan"));
  const double* step = a.ints(1, "step", 3);
  const Shape& b = plan.blocks[0].shape;
  const F32 x = a.f32(2, "x"), out = a.f32(3, "out"), cosT = a.f32(4, "cos"), sinT = a.f32(5, "sin");
  a.need(x, b.width, "x");
  a.need(out, b.width, "out");
  a.need(cosT, b.headDim / 2, "cos");
  a.need(sinT, b.headDim / 2, "sin");
  const uint32_t layers = static_cast<uint32_t>(plan.blocks.size());
  std::vector<StepCache> caches;
  caches.reserve(layers);
  for (uint32_t l = 0; l < layers; l++) {
    // Layer l's element of each array (an Args view holds at most kMax elements).
    const std::string layer = std::string(a.fn()) + " (layer " + std::to_string(l) + "): ", k = layer + "kCaches", v = layer + "vCaches";
    Args ks(a.env(), k.c_str(), a.value(6), l, 1), vs(a.env(), v.c_str(), a.value(7), l, 1);
    caches.push_back(cacheArg(ks, 0, vs, 0, b, static_cast<int64_t>(step[0]), static_cast<int64_t>(step[1]), step[2] != 0, cosT, sinT));
  }
  const float* in = x.p;
  for (uint32_t l = 0; l < layers; l++, in = out.p) decodeBlock(plan.blocks[l], caches[l], in, out.p);
  return undefinedValue(a.env());
}

}  // namespace

void registerLlamaDecode(napi_env env, napi_value exports) {
  defineFunction(env, exports, "llamaDecodeLayer", entry<LlamaDecodeLayerKernel>);
  defineFunction(env, exports, "llamaDecodePlan", entry<LlamaDecodePlanKernel>);
  defineFunction(env, exports, "llamaDecodeStack", entry<LlamaDecodeStackKernel>);
}

}  // namespace sc
