// Convolution through oneDNN primitives, cached per geometry.
//
// User tensors are plain NCHW / OIHW. oneDNN's fastest kernels want blocked layouts (nChw16c
// etc.), so by default each primitive is created with format `any` and the entry keeps reorders
// between the user's buffers and the primitive's own; measured, that beats the plain-layout
// (gemm-based) kernels even counting the reorders, except backward-data with few input channels.
// Backward results go through a reorder with a sum post-op, which is how they accumulate (+=).
//
// 3×3 stride-1 convolutions with 16+ channels each side run oneDNN's Winograd F(4×4, 3×3) kernels
// (all three passes): on ResNet-18's stride-1 layers at batch 32 they took ~0.6× the direct
// kernels' time on one AVX-512 core, with outputs within ~2e-6 relative (L2) of the direct ones.
// Fewer channels (an RGB or grey input) are padded to a 16-channel block, where direct wins. Their
// scratchpad (up to ~90 MB for 512 channels) is oneDNN's one per-thread buffer, shared by all.
#include "dnnl_context.h"
#ifdef SC_HAVE_DNNL

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <new>
#include <string>
#include <unordered_map>

#include "conv.h"
#include "threads.h"

namespace sc {
namespace {

using dims = dnnl::memory::dims;
using tag = dnnl::memory::format_tag;
using prop = dnnl::prop_kind;
using algo = dnnl::algorithm;

int g_policy = 0;  // 0 auto, 1 plain, 2 blocked direct, 3 Winograd wherever oneDNN has it

enum Pass { FWD, BWD_DATA, BWD_WEIGHTS };

bool blocked(const ConvGeom& g, Pass pass) {
  if (g_policy != 0) return g_policy >= 2;
  // Blocked diff_src for a 1-3 channel input is padded to 16 channels: the plain kernel wins
  // (measured for [64,C,28,28]: 0.6 vs 3.3 ms at C = 1, 1.6 vs 1.9 at C = 3; from 4 up blocked wins).
  if (pass == BWD_DATA) return g.inC >= 4;
  return true;
}

/** Winograd where it is measured faster (see the top); direct otherwise, and always with plain layouts. */
algo algorithmFor(const ConvGeom& g) {
  const bool shape = g.kH == 3 && g.kW == 3 && g.strideH == 1 && g.strideW == 1;
  if (!shape || g_policy == 1 || g_policy == 2) return algo::convolution_direct;
  if (g_policy == 3) return algo::convolution_winograd;
  return g.inC >= 16 && g.outC >= 16 ? algo::convolution_winograd : algo::convolution_direct;
}

struct Shapes {
  dims x, w, b, y, strides, padL, padR;
};

Shapes shapes(const ConvGeom& g) {
  // Right padding that makes oneDNN's output-size formula land exactly on outH/outW.
  const int64_t prH = (g.outH - 1) * g.strideH + g.kH - g.inH - g.padH;
  const int64_t prW = (g.outW - 1) * g.strideW + g.kW - g.inW - g.padW;
  return {{g.batch, g.inC, g.inH, g.inW}, {g.outC, g.inC, g.kH, g.kW}, {g.outC},
          {g.batch, g.outC, g.outH, g.outW}, {g.strideH, g.strideW}, {g.padH, g.padW}, {prH, prW}};
}

using dt = dnnl::memory::data_type;

/**
 * The element type of the primitive's operands: float32 throughout, or (the bf16 kernels) bf16
 * activations, weights and output gradients with float32 outputs and weight/input gradients.
 */
dt low(bool bf16) { return bf16 ? dt::bf16 : dt::f32; }

dnnl::memory::desc md(const dims& d, bool any, tag plain, dt type = dt::f32) {
  return dnnl::memory::desc(d, type, any ? tag::any : plain);
}

dnnl::convolution_forward::primitive_desc forwardPd(const ConvGeom& g, bool any, bool bias, algo a, bool bf16 = false) {
  const Shapes s = shapes(g);
  auto xd = md(s.x, any, tag::nchw, low(bf16)), wd = md(s.w, any, tag::oihw, low(bf16)), yd = md(s.y, any, tag::nchw);
  if (bias) {
    return {dnnl::convolution_forward::desc(prop::forward_training, a, xd, wd, plainDesc(s.b, tag::x), yd,
                                            s.strides, s.padL, s.padR),
            dnnlEngine()};
  }
  return {dnnl::convolution_forward::desc(prop::forward_training, a, xd, wd, yd, s.strides, s.padL, s.padR),
          dnnlEngine()};
}

/** Builds with the preferred algorithm; if oneDNN has no such kernel for this shape, with direct. */
template <class Build>
auto withAlgorithm(const ConvGeom& g, Build&& build) {
  const algo a = algorithmFor(g);
  if (a == algo::convolution_direct) return build(a);
  try {
    return build(a);
  } catch (const dnnl::error&) {
    return build(algo::convolution_direct);
  }
}

/** 64-byte-aligned storage we own, so pointing a memory object elsewhere never frees it. */
struct Buffer {
  std::unique_ptr<void, void (*)(void*)> p{nullptr, std::free};
  size_t bytes = 0;
  /** At least `want` bytes; the old contents are not kept when it grows. */
  void* reserve(size_t want) {
    if (want > bytes || !p) {
      const size_t rounded = (std::max<size_t>(want, 1) + 63) / 64 * 64;
      p.reset(std::aligned_alloc(64, rounded));
      if (!p) throw std::bad_alloc();
      bytes = rounded;
    }
    return p.get();
  }
};

/**
 * Blocked-layout copies live only within one call, so every cached primitive of this thread
 * shares three staging buffers (one per operand of a call) instead of owning its own: ResNet-18's
 * ten geometries each kept up to six activation-sized copies.
 */
enum Slot { SLOT_A, SLOT_B, SLOT_C, kSlots };
void* staging(Slot slot, size_t bytes) {
  static thread_local Buffer buffers[kSlots];
  return buffers[slot].reserve(bytes);
}

/** A user-layout memory and the primitive-layout one it maps to (the same object if layouts agree). */
struct Port {
  dnnl::memory user, prim;
  Slot slot = SLOT_A;  // where prim lives during a call when it is not the user's buffer
  bool staged = false;
  dnnl::reorder toPrim, toUser;
  dnnl::reorder toUserSet;  // accumulate ports: the plain copy, for a gradient that is overwritten
  bool reorderIn = false, reorderOut = false;

  dnnl::memory stagedMemory(const dnnl::memory::desc& md, Slot where) {
    slot = where;
    staged = true;
    return dnnl::memory(md, dnnlEngine(), DNNL_MEMORY_NONE);
  }
  /** For inputs: the primitive reads `prim`, filled from `user` when the layouts differ. */
  void input(const dnnl::memory::desc& userMd, const dnnl::memory::desc& primMd, Slot where) {
    user = dnnl::memory(userMd, dnnlEngine(), DNNL_MEMORY_NONE);
    if (primMd == userMd) {
      prim = user;
      return;
    }
    prim = stagedMemory(primMd, where);
    toPrim = dnnl::reorder(user, prim);
    reorderIn = true;
  }
  /** For forward outputs: written to `prim`, copied to `user` when the layouts differ. */
  void output(const dnnl::memory::desc& userMd, const dnnl::memory::desc& primMd, Slot where) {
    user = dnnl::memory(userMd, dnnlEngine(), DNNL_MEMORY_NONE);
    if (primMd == userMd) {
      prim = user;
      return;
    }
    prim = stagedMemory(primMd, where);
    toUser = dnnl::reorder(prim, user);
    reorderOut = true;
  }
  /** For gradients: always written to a staged `prim`, then added into `user` (reorder + sum). */
  void accumulate(const dnnl::memory::desc& userMd, const dnnl::memory::desc& primMd, Slot where) {
    user = dnnl::memory(userMd, dnnlEngine(), DNNL_MEMORY_NONE);
    prim = stagedMemory(primMd, where);
    dnnl::post_ops po;
    po.append_sum(1.0f);
    dnnl::primitive_attr attr;
    attr.set_post_ops(po);
    toUser = dnnl::reorder(dnnl::reorder::primitive_desc(prim, user, attr));
    toUserSet = dnnl::reorder(prim, user);
    reorderOut = true;
  }
  /** Binds this call's user buffer and staging, converting an input that is in another layout. */
  void before(const void* p, dnnl::stream& s) {
    bind(user, p);
    if (staged) bind(prim, staging(slot, prim.get_desc().get_size()));
    if (reorderIn) toPrim.execute(s, user, prim);
  }
  /** Reads an input that a port on the same slot already converted to this port's layout. */
  void borrow() { bind(prim, staging(slot, prim.get_desc().get_size())); }
  /** Converts an output back to the user's layout; `set` overwrites an accumulating port's target. */
  void after(dnnl::stream& s, bool set = false) {
    if (!reorderOut) return;
    if (set && toUserSet) toUserSet.execute(s, prim, user);
    else toUser.execute(s, prim, user);
  }
};

struct Forward {
  bool ok = false;
  std::string impl;
  dnnl::convolution_forward prim;
  Port x, w, y;
  dnnl::memory b;
  std::unordered_map<int, dnnl::memory> args;
};

struct BackwardData {
  bool ok = false;
  std::string impl;
  dnnl::convolution_backward_data prim;
  Port gy, w, gx;
  std::unordered_map<int, dnnl::memory> args;
};

struct BackwardWeights {
  bool ok = false;
  std::string impl;
  dnnl::convolution_backward_weights prim;
  Port x, gy, gw;
  dnnl::memory gb;  // plain, private; added into the user's bias gradient by a loop
  std::unordered_map<int, dnnl::memory> args;
};

dnnl::memory::desc userX(const Shapes& s, bool bf16 = false) { return md(s.x, false, tag::nchw, low(bf16)); }
dnnl::memory::desc userW(const Shapes& s, bool bf16 = false) { return md(s.w, false, tag::oihw, low(bf16)); }
dnnl::memory::desc userY(const Shapes& s) { return plainDesc(s.y, tag::nchw); }

std::unique_ptr<Forward> createForward(const ConvGeom& g, bool bias, bool bf16) {
  auto e = std::make_unique<Forward>();
  const Shapes s = shapes(g);
  try {
    auto pd = withAlgorithm(g, [&](algo a) { return forwardPd(g, blocked(g, FWD), bias, a, bf16); });
    if (bf16 && std::string(pd.impl_info_str()).rfind("ref", 0) == 0) return e;
    e->impl = pd.impl_info_str();
    e->prim = dnnl::convolution_forward(pd);
    e->x.input(userX(s, bf16), pd.src_desc(), SLOT_A);
    e->w.input(userW(s, bf16), pd.weights_desc(), SLOT_B);
    e->y.output(userY(s), pd.dst_desc(), SLOT_C);
    e->args = {{DNNL_ARG_SRC, e->x.prim}, {DNNL_ARG_WEIGHTS, e->w.prim}, {DNNL_ARG_DST, e->y.prim}};
    if (bias) {
      e->b = dnnl::memory(plainDesc(s.b, tag::x), dnnlEngine(), DNNL_MEMORY_NONE);
      e->args[DNNL_ARG_BIAS] = e->b;
    }
    e->ok = true;
  } catch (const dnnl::error&) {
    e->ok = false;
  }
  return e;
}

std::unique_ptr<BackwardData> createBackwardData(const ConvGeom& g, bool bf16) {
  auto e = std::make_unique<BackwardData>();
  const Shapes s = shapes(g);
  try {
    // bf16: blocked layouts always (the plain bf16 kernels are the reference ones).
    const bool any = bf16 || blocked(g, BWD_DATA);
    auto pd = withAlgorithm(g, [&](algo a) {
      auto desc = dnnl::convolution_backward_data::desc(a, md(s.x, any, tag::nchw), md(s.w, any, tag::oihw, low(bf16)),
                                                        md(s.y, any, tag::nchw, low(bf16)), s.strides, s.padL, s.padR);
      return dnnl::convolution_backward_data::primitive_desc(desc, dnnlEngine(), forwardPd(g, any, false, a, bf16));
    });
    if (bf16 && std::string(pd.impl_info_str()).rfind("ref", 0) == 0) return e;
    e->impl = pd.impl_info_str();
    e->prim = dnnl::convolution_backward_data(pd);
    // Backward-weights runs first in a call (x on A, gy on B, gw on C): gy stays on B to be shared.
    // (bf16: the user's float32 gy is rounded to bf16 by this reorder.)
    e->gy.input(userY(s), pd.diff_dst_desc(), SLOT_B);
    e->w.input(userW(s, bf16), pd.weights_desc(), SLOT_A);
    e->gx.accumulate(userX(s), pd.diff_src_desc(), SLOT_C);
    e->args = {{DNNL_ARG_DIFF_DST, e->gy.prim}, {DNNL_ARG_WEIGHTS, e->w.prim}, {DNNL_ARG_DIFF_SRC, e->gx.prim}};
    e->ok = true;
  } catch (const dnnl::error&) {
    e->ok = false;
  }
  return e;
}

std::unique_ptr<BackwardWeights> createBackwardWeights(const ConvGeom& g, bool bias, bool bf16) {
  auto e = std::make_unique<BackwardWeights>();
  const Shapes s = shapes(g);
  try {
    const bool any = bf16 || blocked(g, BWD_WEIGHTS);
    auto xd = md(s.x, any, tag::nchw, low(bf16)), wd = md(s.w, any, tag::oihw), yd = md(s.y, any, tag::nchw, low(bf16));
    using bw = dnnl::convolution_backward_weights;
    auto pd = withAlgorithm(g, [&](algo a) {
      auto desc = bias ? bw::desc(a, xd, wd, plainDesc(s.b, tag::x), yd, s.strides, s.padL, s.padR)
                       : bw::desc(a, xd, wd, yd, s.strides, s.padL, s.padR);
      return bw::primitive_desc(desc, dnnlEngine(), forwardPd(g, any, bias, a, bf16));
    });
    if (bf16 && std::string(pd.impl_info_str()).rfind("ref", 0) == 0) return e;
    e->impl = pd.impl_info_str();
    e->prim = bw(pd);
    e->x.input(userX(s, bf16), pd.src_desc(), SLOT_A);
    e->gy.input(userY(s), pd.diff_dst_desc(), SLOT_B);
    e->gw.accumulate(userW(s), pd.diff_weights_desc(), SLOT_C);
    e->args = {{DNNL_ARG_SRC, e->x.prim}, {DNNL_ARG_DIFF_DST, e->gy.prim}, {DNNL_ARG_DIFF_WEIGHTS, e->gw.prim}};
    if (bias) {
      e->gb = dnnl::memory(pd.diff_bias_desc(), dnnlEngine());
      e->args[DNNL_ARG_DIFF_BIAS] = e->gb;
    }
    e->ok = true;
  } catch (const dnnl::error&) {
    e->ok = false;
  }
  return e;
}

Key convKey(const ConvGeom& g, int pass, bool bias, int nthr, bool bf16 = false) {
  Key k;
  for (int64_t v : {g.batch, g.inC, g.inH, g.inW, g.outC, g.kH, g.kW, g.strideH, g.strideW, g.padH, g.padW})
    k.add(v);
  k.add(int64_t{pass}).add(int64_t{bias}).add(int64_t{nthr}).add(int64_t{g_policy}).add(int64_t{bf16});
  return k;
}

int convThreads(const ConvGeom& g) {
  return threadsFor(2.0 * g.batch * g.outC * g.outH * g.outW * g.inC * g.kH * g.kW, 1e6);
}

template <class Entry, class Create>
Entry* lookup(PrimitiveCache<Entry>& cache, const Key& k, Create&& create) {
  Entry* e = cache.find(k);
  return e ? e : cache.insert(k, create());
}

}  // namespace

void setConvLayoutPolicy(int policy) { g_policy = policy; }

namespace {

thread_local std::string g_lastBf16Impl = "none";

/** Runs the cached forward primitive; false when oneDNN has none for this geometry and types. */
bool forwardPrimitive(const ConvGeom& g, const void* x, const void* w, const float* bias, float* y, bool bf16) {
  static thread_local PrimitiveCache<Forward> cache(256);
  const int nthr = convThreads(g);
  useOmpThreads(nthr);
  Forward* e = lookup(cache, convKey(g, FWD, bias != nullptr, nthr, bf16), [&] { return createForward(g, bias != nullptr, bf16); });
  if (bf16) g_lastBf16Impl = e->ok ? e->impl : "refused";
  if (!e->ok) return false;
  auto& s = dnnlStream();
  e->x.before(x, s);
  e->w.before(w, s);
  e->y.before(y, s);
  if (bias) bind(e->b, bias);
  e->prim.execute(s, e->args);
  e->y.after(s);
  s.wait();
  return true;
}

/** Runs the cached backward primitives (weights, then data); false when either is missing. */
bool backwardPrimitives(const ConvGeom& g, const void* x, const void* w, const float* gy, float* gx,
                        float* gw, float* gb, bool setGx, bool bf16) {
  static thread_local PrimitiveCache<BackwardData> dataCache(256);
  static thread_local PrimitiveCache<BackwardWeights> weightCache(256);
  const int nthr = convThreads(g);
  useOmpThreads(nthr);
  auto& s = dnnlStream();
  BackwardWeights* bw = lookup(weightCache, convKey(g, BWD_WEIGHTS, gb != nullptr, nthr, bf16),
                               [&] { return createBackwardWeights(g, gb != nullptr, bf16); });
  BackwardData* bd = nullptr;
  if (gx) bd = lookup(dataCache, convKey(g, BWD_DATA, false, nthr, bf16), [&] { return createBackwardData(g, bf16); });
  if (bf16) g_lastBf16Impl = bw->ok ? bw->impl + (bd ? " / " + (bd->ok ? bd->impl : std::string("refused")) : "") : "refused";
  if (!bw->ok || (gx && !bd->ok)) return false;
  bw->x.before(x, s);
  bw->gy.before(gy, s);
  bw->gw.before(gw, s);
  bw->prim.execute(s, bw->args);
  bw->gw.after(s);
  if (gx) {
    if (bd->gy.reorderIn && bw->gy.reorderIn && bd->gy.prim.get_desc() == bw->gy.prim.get_desc()) {
      bd->gy.borrow();  // same layout and slot: reuse the gy that backward-weights reordered
    } else {
      bd->gy.before(gy, s);
    }
    bd->w.before(w, s);
    bd->gx.before(gx, s);
    bd->prim.execute(s, bd->args);
    bd->gx.after(s, setGx);
  }
  s.wait();
  if (gb) {
    const float* p = static_cast<const float*>(bw->gb.get_data_handle());
    for (int64_t o = 0; o < g.outC; o++) gb[o] += p[o];
  }
  return true;
}

}  // namespace

void convForwardDnnl(const ConvGeom& g, const float* x, const float* w, const float* bias, float* y) {
  if (!forwardPrimitive(g, x, w, bias, y, false)) convForwardIm2col(g, x, w, bias, y);
}

void convBackwardDnnl(const ConvGeom& g, const float* x, const float* w, const float* gy, float* gx,
                      float* gw, float* gb, bool setGx) {
  if (backwardPrimitives(g, x, w, gy, gx, gw, gb, setGx, false)) return;
  if (setGx && gx) std::memset(gx, 0, sizeof(float) * static_cast<size_t>(g.xSize()));
  convBackwardIm2col(g, x, w, gy, gx, gw, gb);
}

bool convForwardDnnlBf16(const ConvGeom& g, const uint16_t* x, const uint16_t* w, const float* bias, float* y) {
  return forwardPrimitive(g, x, w, bias, y, true);
}

bool convBackwardDnnlBf16(const ConvGeom& g, const uint16_t* x, const uint16_t* w, const float* gy, float* gx,
                          float* gw, float* gb, bool setGx) {
  return backwardPrimitives(g, x, w, gy, gx, gw, gb, setGx, true);
}

const char* lastConvBf16Impl() { return g_lastBf16Impl.c_str(); }

}  // namespace sc

#endif  // SC_HAVE_DNNL
