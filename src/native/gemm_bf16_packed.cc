// bf16 products against a weight kept in oneDNN's blocked layout across calls.
//
// Given plain row-major bf16 weights, oneDNN's bf16 matmul (bf16.cc) copies B into its blocked
// VNNI/AMX layout inside every call (brgemm's copy_B), once per block of rows of A, so a frozen
// weight (LoRA's base, a generation's cast) is re-laid-out on every product. Here a weight W
// [rows, cols] is reordered once into the layout the primitive asks for (weights format `any`) and
// the product runs on that copy:
//  - forward  (x·Wᵀ, a linear layer's y):  B = Wᵀ, K = cols, N = rows;
//  - backward (dY·W, the dX of its backward): B = W,  K = rows, N = cols.
// Each is its own packed copy (a different logical B). The handle owns its memory and its
// primitives (keyed by M, beta, bias, threads); JavaScript holds it as an external and frees it
// with the storage it came from (ops/packed_weights.ts); its bytes are reported to V8 as external
// memory, so a server's per-generation packs are collected like the casts they came from. The arithmetic is the bf16 primitive's:
// exact bf16 products, float32 accumulation (the sums' order may differ: float32 rounding).
#include "dnnl_context.h"
#include "napi_args.h"
#include "registry.h"
#include "threads.h"

#include <memory>
#include <string>
#include <unordered_map>

namespace sc {
namespace {

#ifdef SC_HAVE_DNNL
using dims = dnnl::memory::dims;
using dt = dnnl::memory::data_type;

struct PackedPrimitive {
  dnnl::matmul prim;
  dnnl::memory a, c, bias;
  std::unordered_map<int, dnnl::memory> args;
};

struct PackedBf16 {
  int64_t K = 0, N = 0;
  dnnl::memory::desc packedDesc;
  dnnl::memory packed;  // owns its buffer
  std::unordered_map<Key, std::unique_ptr<PackedPrimitive>, KeyHash> prims;
};

/** As bf16.cc's grain: a bf16 FLOP costs less than half a float32 one. */
constexpr double kBf16GrainFlops = 1.6e7;

dnnl::memory::desc plainB(const PackedBf16& p, bool transposed) {
  // Forward: B = Wᵀ with W [N, K] row-major, so B's (k, n) is at n·K + k.
  return transposed ? dnnl::memory::desc({p.K, p.N}, dt::bf16, dims{1, p.K}) : dnnl::memory::desc({p.K, p.N}, dt::bf16, dims{p.N, 1});
}

dnnl::matmul::primitive_desc matmulPd(int64_t M, const PackedBf16& p, const dnnl::memory::desc& bd, float beta, bool bias) {
  const dnnl::memory::desc ad({M, p.K}, dt::bf16, dims{p.K, 1});
  const dnnl::memory::desc cd({M, p.N}, dt::f32, dims{p.N, 1});
  dnnl::primitive_attr attr;
  if (beta != 0) {
    dnnl::post_ops po;
    po.append_sum(beta);
    attr.set_post_ops(po);
  }
  const dnnl::memory::desc biasd({1, p.N}, dt::f32, dims{p.N, 1});
  const dnnl::matmul::desc d = bias ? dnnl::matmul::desc(ad, bd, biasd, cd) : dnnl::matmul::desc(ad, bd, cd);
  return dnnl::matmul::primitive_desc(d, attr, dnnlEngine());
}

bool isRef(const dnnl::matmul::primitive_desc& pd) { return std::string(pd.impl_info_str()).rfind("ref", 0) == 0; }

/** W reordered into the layout a product of M rows wants; null where oneDNN has no fast kernel. */
std::unique_ptr<PackedBf16> pack(const uint16_t* W, int64_t rows, int64_t cols, bool forward, int64_t M) {
  auto p = std::make_unique<PackedBf16>();
  p->K = forward ? cols : rows;
  p->N = forward ? rows : cols;
  const dnnl::memory::desc any({p->K, p->N}, dt::bf16, dnnl::memory::format_tag::any);
  try {
    const auto pd = matmulPd(M, *p, any, 0, false);
    if (isRef(pd)) return nullptr;
    p->packedDesc = pd.weights_desc();
    auto& eng = dnnlEngine();
    dnnl::memory src(plainB(*p, forward), eng, const_cast<uint16_t*>(W));
    p->packed = dnnl::memory(p->packedDesc, eng);
    dnnl::reorder(src, p->packed).execute(dnnlStream(), src, p->packed);
    dnnlStream().wait();
  } catch (const dnnl::error&) {
    return nullptr;
  }
  return p;
}

/** The primitive for M rows on p's layout (made once per shape), or null when none fast takes it. */
PackedPrimitive* primitiveFor(PackedBf16& p, int64_t M, float beta, bool bias, int nthr) {
  Key key;
  key.add(M).add(beta).add(int64_t{bias}).add(int64_t{nthr});
  auto it = p.prims.find(key);
  if (it != p.prims.end()) return it->second.get();
  std::unique_ptr<PackedPrimitive> e;
  try {
    const auto pd = matmulPd(M, p, p.packedDesc, beta, bias);
    if (!isRef(pd)) {
      e = std::make_unique<PackedPrimitive>();
      e->prim = dnnl::matmul(pd);
      auto& eng = dnnlEngine();
      e->a = dnnl::memory(pd.src_desc(), eng, DNNL_MEMORY_NONE);
      e->c = dnnl::memory(pd.dst_desc(), eng, DNNL_MEMORY_NONE);
      e->args = {{DNNL_ARG_SRC, e->a}, {DNNL_ARG_WEIGHTS, p.packed}, {DNNL_ARG_DST, e->c}};
      if (bias) {
        e->bias = dnnl::memory(dnnl::memory::desc({1, p.N}, dt::f32, dims{p.N, 1}), eng, DNNL_MEMORY_NONE);
        e->args[DNNL_ARG_BIAS] = e->bias;
      }
    }
  } catch (const dnnl::error&) {
    e = nullptr;
  }
  if (p.prims.size() >= 64) p.prims.clear();
  PackedPrimitive* raw = e.get();
  p.prims[key] = std::move(e);
  return raw;
}

/** The packed copy's bytes, reported to V8 so that its collector sees the memory a handle holds. */
int64_t packedBytes(const PackedBf16& p) { return static_cast<int64_t>(p.packedDesc.get_size()); }

void finalizePacked(napi_env env, void* data, void*) {
  auto* p = static_cast<PackedBf16*>(data);
  int64_t total = 0;
  napi_adjust_external_memory(env, -packedBytes(*p), &total);
  delete p;
}

PackedBf16& packedArg(Args& a, size_t i) { return *static_cast<PackedBf16*>(a.external(i, "packed")); }
#endif

// packBf16Weight(W u16 [rows, cols], rows, cols, forward, M) → a packed weight, or null when
// oneDNN has no fast kernel for it (the caller keeps the plain product).
napi_value PackBf16WeightKernel(Args& a) {
  const U16 W = a.u16(0, "W");
  const int64_t rows = a.integer(1, "rows", 1);
  const int64_t cols = a.integer(2, "cols", 1);
  const bool forward = a.flag(3);
  const int64_t M = a.integer(4, "M", 1);
  a.need(W, rows * cols, "W");
  napi_value result;
#ifdef SC_HAVE_DNNL
  std::unique_ptr<PackedBf16> p = pack(W.p, rows, cols, forward, M);
  if (p) {
    if (napi_create_external(a.env(), p.get(), finalizePacked, nullptr, &result) != napi_ok) {
      throwRange("packBf16Weight: could not create the external");
    }
    int64_t total = 0;
    napi_adjust_external_memory(a.env(), packedBytes(*p), &total);
    p.release();
    return result;
  }
#endif
  napi_get_null(a.env(), &result);
  return result;
}

// gemmBf16Packed(M, A u16 [M, K], packed, beta, C f32 [M, N], bias f32 [N] | null) → whether it
// ran (false: no fast primitive for this M; C untouched).
napi_value GemmBf16PackedKernel(Args& a) {
  napi_value result;
#ifdef SC_HAVE_DNNL
  const int64_t M = a.integer(0, "M", 1);
  const U16 A = a.u16(1, "A");
  PackedBf16& p = packedArg(a, 2);
  const float beta = static_cast<float>(a.num(3, "beta"));
  const F32 C = a.f32(4, "C");
  const F32 bias = a.argCount() > 5 ? a.f32OrNull(5, "bias") : F32{};
  a.need(A, M * p.K, "A");
  a.need(C, M * p.N, "C");
  if (bias.p) {
    a.need(bias, p.N, "bias");
    if (beta != 0) throwRange("gemmBf16Packed: a bias needs beta = 0");
  }
  const int nthr = threadsFor(2.0 * M * p.N * p.K, kBf16GrainFlops);
  useOmpThreads(nthr);
  PackedPrimitive* e = primitiveFor(p, M, beta, bias.p != nullptr, nthr);
  if (e) {
    bind(e->a, A.p);
    bind(e->c, C.p);
    if (bias.p) bind(e->bias, bias.p);
    e->prim.execute(dnnlStream(), e->args);
    dnnlStream().wait();
  }
  napi_get_boolean(a.env(), e != nullptr, &result);
#else
  napi_get_boolean(a.env(), false, &result);
#endif
  return result;
}

}  // namespace

void registerBf16Packed(napi_env env, napi_value exports) {
  defineFunction(env, exports, "packBf16Weight", entry<PackBf16WeightKernel>);
  defineFunction(env, exports, "gemmBf16Packed", entry<GemmBf16PackedKernel>);
}

}  // namespace sc
