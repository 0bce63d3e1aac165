// Average pooling through oneDNN (count_include_pad: pooling_avg_include_padding).
//
// With floor-mode output sizes a window never passes the padded border, so oneDNN's divisor
// (always kH·kW) equals torch's. Max pooling stays in pool.cc: oneDNN's workspace is not the
// contract's flat argmax, and it ignores NaN and returns -FLT_MAX for all -inf windows.
#include "dnnl_context.h"
#ifdef SC_HAVE_DNNL

#include <unordered_map>

#include "pool.h"
#include "threads.h"

namespace sc {
namespace {

struct AvgEntry {
  bool ok = false;
  dnnl::primitive prim;
  dnnl::memory in, out;  // forward: x → y; backward: gy → private diff_src
  std::unordered_map<int, dnnl::memory> args;
};

using dims = dnnl::memory::dims;
using tag = dnnl::memory::format_tag;

struct PoolShapes {
  dims x, y, strides, kernel, padL, padR;
};

PoolShapes shapes(const PoolGeom& g) {
  const int64_t prH = (g.outH - 1) * g.strideH + g.kH - g.inH - g.padH;
  const int64_t prW = (g.outW - 1) * g.strideW + g.kW - g.inW - g.padW;
  return {{g.batch, g.channels, g.inH, g.inW}, {g.batch, g.channels, g.outH, g.outW}, {g.strideH, g.strideW},
          {g.kH, g.kW}, {g.padH, g.padW}, {prH, prW}};
}

dnnl::pooling_forward::primitive_desc forwardPd(const PoolShapes& s) {
  return {dnnl::pooling_forward::desc(dnnl::prop_kind::forward_training, dnnl::algorithm::pooling_avg_include_padding,
                                      plainDesc(s.x, tag::nchw), plainDesc(s.y, tag::nchw), s.strides, s.kernel,
                                      s.padL, s.padR),
          dnnlEngine()};
}

std::unique_ptr<AvgEntry> create(const PoolGeom& g, bool backward) {
  auto e = std::make_unique<AvgEntry>();
  const PoolShapes s = shapes(g);
  auto& eng = dnnlEngine();
  try {
    auto fpd = forwardPd(s);
    if (!backward) {
      e->prim = dnnl::pooling_forward(fpd);
      e->in = dnnl::memory(fpd.src_desc(), eng, DNNL_MEMORY_NONE);
      e->out = dnnl::memory(fpd.dst_desc(), eng, DNNL_MEMORY_NONE);
      e->args = {{DNNL_ARG_SRC, e->in}, {DNNL_ARG_DST, e->out}};
    } else {
      dnnl::pooling_backward::primitive_desc bpd(
          dnnl::pooling_backward::desc(dnnl::algorithm::pooling_avg_include_padding, plainDesc(s.x, tag::nchw),
                                       plainDesc(s.y, tag::nchw), s.strides, s.kernel, s.padL, s.padR),
          eng, fpd);
      e->prim = dnnl::pooling_backward(bpd);
      e->in = dnnl::memory(bpd.diff_dst_desc(), eng, DNNL_MEMORY_NONE);
      e->out = dnnl::memory(bpd.diff_src_desc(), eng);  // private: the result is added into gx
      e->args = {{DNNL_ARG_DIFF_DST, e->in}, {DNNL_ARG_DIFF_SRC, e->out}};
    }
    e->ok = true;
  } catch (const dnnl::error&) {
    e->ok = false;
  }
  return e;
}

AvgEntry* lookup(const PoolGeom& g, bool backward, int nthr) {
  static thread_local PrimitiveCache<AvgEntry> cache(256);
  Key k;
  for (int64_t v : {g.batch, g.channels, g.inH, g.inW, g.kH, g.kW, g.strideH, g.strideW, g.padH, g.padW}) k.add(v);
  k.add(int64_t{backward}).add(int64_t{nthr});
  AvgEntry* e = cache.find(k);
  return e ? e : cache.insert(k, create(g, backward));
}

}  // namespace

bool avgPoolDnnl(const PoolGeom& g, const float* x, float* y) {
  const int nthr = threadsFor(static_cast<double>(g.xSize()), 65536);
  useOmpThreads(nthr);
  AvgEntry* e = lookup(g, false, nthr);
  if (!e->ok) return false;
  bind(e->in, x);
  bind(e->out, y);
  e->prim.execute(dnnlStream(), e->args);
  dnnlStream().wait();
  return true;
}

bool avgPoolBackwardDnnl(const PoolGeom& g, const float* gy, float* gx) {
  const int nthr = threadsFor(static_cast<double>(g.xSize()), 65536);
  useOmpThreads(nthr);
  AvgEntry* e = lookup(g, true, nthr);
  if (!e->ok) return false;
  bind(e->in, gy);
  e->prim.execute(dnnlStream(), e->args);
  dnnlStream().wait();
  const float* d = static_cast<const float*>(e->out.get_data_handle());
  parallelRange(g.xSize(), 65536, [&](int64_t lo, int64_t hi) {
    for (int64_t i = lo; i < hi; i++) gx[i] += d[i];
  });
  return true;
}

}  // namespace sc

#endif  // SC_HAVE_DNNL
