// GEMM through oneDNN: the matmul primitive (cached per shape; fastest for all but vector-like
// products) and dnnl_sgemm (no primitive to create; better when M or N is 1).
#include "dnnl_context.h"
#ifdef SC_HAVE_DNNL

#include <string>
#include <unordered_map>

#include "gemm.h"
#include "signal_guard.h"
#include "threads.h"

namespace sc {
namespace {

struct MatmulEntry {
  bool ok = false;  // false: oneDNN offered only its reference kernel or refused the shape
  dnnl::matmul prim;
  dnnl::memory a, b, c, bias;
  std::unordered_map<int, dnnl::memory> args;
};

using dims = dnnl::memory::dims;

/** op(A) (M×K) as stored: transposed storage is expressed through strides, not a copy. */
dims strides2(bool trans, int64_t ld) { return trans ? dims{1, ld} : dims{ld, 1}; }

std::unique_ptr<MatmulEntry> createMatmul(const Gemm& g, int64_t bA, int64_t bB) {
  auto e = std::make_unique<MatmulEntry>();
  dnnl::memory::desc ad, bd, cd;
  const dims sa = strides2(g.transA, g.lda), sb = strides2(g.transB, g.ldb);
  if (g.batch == 1) {
    ad = stridedDesc({g.M, g.K}, sa);
    bd = stridedDesc({g.K, g.N}, sb);
    cd = stridedDesc({g.M, g.N}, {g.ldc, 1});
  } else {
    // A broadcast operand (stride 0) becomes a batch dimension of 1, which matmul broadcasts.
    ad = stridedDesc({bA, g.M, g.K}, {bA == 1 ? g.M * g.K : g.strideA, sa[0], sa[1]});
    bd = stridedDesc({bB, g.K, g.N}, {bB == 1 ? g.K * g.N : g.strideB, sb[0], sb[1]});
    cd = stridedDesc({g.batch, g.M, g.N}, {g.strideC, g.ldc, 1});
  }
  // The bias is a [1, N] row oneDNN broadcasts over M (batch 1 only: see gemmDnnlMatmul).
  const dnnl::memory::desc biasd = g.bias ? stridedDesc({1, g.N}, {g.N, 1}) : dnnl::memory::desc();
  dnnl::primitive_attr attr;
  if (g.alpha != 1) attr.set_output_scales(0, {g.alpha});
  if (g.beta != 0) {
    dnnl::post_ops po;
    po.append_sum(g.beta);
    attr.set_post_ops(po);
  }
  try {
    const dnnl::matmul::desc d = g.bias ? dnnl::matmul::desc(ad, bd, biasd, cd) : dnnl::matmul::desc(ad, bd, cd);
    dnnl::matmul::primitive_desc pd(d, attr, dnnlEngine());
    if (std::string(pd.impl_info_str()).rfind("ref", 0) == 0) return e;
    e->prim = dnnl::matmul(pd);
  } catch (const dnnl::error&) {
    return e;
  }
  auto& eng = dnnlEngine();
  e->a = dnnl::memory(ad, eng, DNNL_MEMORY_NONE);
  e->b = dnnl::memory(bd, eng, DNNL_MEMORY_NONE);
  e->c = dnnl::memory(cd, eng, DNNL_MEMORY_NONE);
  e->args = {{DNNL_ARG_SRC, e->a}, {DNNL_ARG_WEIGHTS, e->b}, {DNNL_ARG_DST, e->c}};
  if (g.bias) {
    e->bias = dnnl::memory(biasd, eng, DNNL_MEMORY_NONE);
    e->args[DNNL_ARG_BIAS] = e->bias;
  }
  e->ok = true;
  return e;
}

/**
 * FLOPs per thread before a GEMM forks (from 2 × this): bench:threads on the quiet 2-core machine
 * measured a second thread losing on [M,784]@[784,128] up to M = 128 (26 MFLOP: 0.75×) and winning
 * at M = 512 (103 MFLOP: 1.22×).
 */
constexpr double kGemmGrainFlops = 3.2e7;
}  // namespace

bool gemmDnnlMatmul(const Gemm& g) {
  if (g.batch > 1 && g.strideC == 0) return false;  // every batch into one C: not a matmul
  // A bias is fused for the linear layer's shape only (one matrix, output scale 1).
  if (g.bias && (g.batch != 1 || g.alpha != 1 || g.beta != 0)) return false;
  const int64_t bA = g.batch > 1 && g.strideA != 0 ? g.batch : 1;
  const int64_t bB = g.batch > 1 && g.strideB != 0 ? g.batch : 1;
  const int nthr = threadsFor(2.0 * g.M * g.N * g.K * g.batch, layerRowsProduct(g) ? kLayerGrainFlops : kGemmGrainFlops);
  Key key;
  key.add(int64_t{g.transA}).add(int64_t{g.transB}).add(g.M).add(g.N).add(g.K).add(g.batch);
  key.add(bA).add(bB).add(g.strideA).add(g.strideB).add(g.strideC).add(g.lda).add(g.ldb).add(g.ldc);
  key.add(g.alpha).add(g.beta).add(int64_t{nthr}).add(int64_t{g.bias != nullptr});
  static thread_local PrimitiveCache<MatmulEntry> cache(512);
  // The primitive partitions work for the OpenMP team size current at creation; keep them equal.
  useOmpThreads(nthr);
  MatmulEntry* e = cache.find(key);
  if (!e) e = cache.insert(key, createMatmul(g, bA, bB));
  if (!e->ok) return false;
  bind(e->a, g.A);
  bind(e->b, g.B);
  bind(e->c, g.C);
  if (g.bias) bind(e->bias, g.bias);
  e->prim.execute(dnnlStream(), e->args);
  dnnlStream().wait();
  return true;
}

void gemmDnnlSgemm(const Gemm& g) {
  const int nthr = threadsFor(2.0 * g.M * g.N * g.K, kGemmGrainFlops);
  blockSignalsInOmpWorkers(nthr);
  useOmpThreads(nthr);
  const SignalsBlocked quiet;  // see signal_guard.h: a signal now would land on the heap
  for (int64_t b = 0; b < g.batch; b++) {
    const dnnl_status_t st =
        dnnl_sgemm(g.transA ? 'T' : 'N', g.transB ? 'T' : 'N', g.M, g.N, g.K, g.alpha,
                   g.A + b * g.strideA, g.lda, g.B + b * g.strideB, g.ldb, g.beta,
                   g.C + b * g.strideC, g.ldc);
    if (st != dnnl_success) throw std::runtime_error("dnnl_sgemm failed with status " + std::to_string(st));
  }
}

}  // namespace sc

#endif  // SC_HAVE_DNNL
