// The conv2d / conv2dBackward kernels: validation, then oneDNN when built with it, else im2col.
#include <cstring>
#include <string>
#include <vector>

#include "bf16.h"
#include "conv.h"
#include "napi_args.h"
#include "registry.h"

namespace sc {
namespace {

enum class ConvEngine { Auto, Im2col };
ConvEngine g_engine = ConvEngine::Auto;

#ifdef SC_HAVE_DNNL
bool useDnnl() { return g_engine == ConvEngine::Auto; }
#endif

// conv2d(geometry, x, w, bias|null, y)
napi_value Conv2dKernel(Args& a) {
  const ConvGeom g = convGeom(a, 0);
  const F32 x = a.f32(1, "x"), w = a.f32(2, "w"), bias = a.f32OrNull(3, "bias"), y = a.f32(4, "y");
  a.need(x, g.xSize(), "x");
  a.need(w, g.wSize(), "w");
  a.need(y, g.ySize(), "y");
  if (bias.p) a.need(bias, g.outC, "bias");
  if (g.batch == 0) return undefinedValue(a.env());
#ifdef SC_HAVE_DNNL
  if (useDnnl()) {
    convForwardDnnl(g, x.p, w.p, bias.p, y.p);
    return undefinedValue(a.env());
  }
#endif
  convForwardIm2col(g, x.p, w.p, bias.p, y.p);
  return undefinedValue(a.env());
}

// conv2dBackward(geometry, x, w, gy, gx|null, gw, gBias|null[, setGx]): with setGx, gx is
// overwritten instead of accumulated.
napi_value Conv2dBackwardKernel(Args& a) {
  const ConvGeom g = convGeom(a, 0);
  const F32 x = a.f32(1, "x"), w = a.f32(2, "w"), gy = a.f32(3, "gy"), gx = a.f32OrNull(4, "gx"),
            gw = a.f32(5, "gw"), gb = a.f32OrNull(6, "gBias");
  a.need(x, g.xSize(), "x");
  a.need(w, g.wSize(), "w");
  a.need(gy, g.ySize(), "gy");
  a.need(gw, g.wSize(), "gw");
  if (gx.p) a.need(gx, g.xSize(), "gx");
  if (gb.p) a.need(gb, g.outC, "gBias");
  const bool setGx = a.argCount() > 7 && a.flag(7);
  if (g.batch == 0) return undefinedValue(a.env());
#ifdef SC_HAVE_DNNL
  if (useDnnl()) {
    convBackwardDnnl(g, x.p, w.p, gy.p, gx.p, gw.p, gb.p, setGx);
    return undefinedValue(a.env());
  }
#endif
  if (setGx && gx.p) std::memset(gx.p, 0, sizeof(float) * static_cast<size_t>(g.xSize()));
  convBackwardIm2col(g, x.p, w.p, gy.p, gx.p, gw.p, gb.p);
  return undefinedValue(a.env());
}

/** The float32 engines over widened bf16 operands: the same products, float32 sums. */
void convForwardWidened(const ConvGeom& g, const uint16_t* x, const uint16_t* w, const float* bias, float* y) {
  const std::vector<float> xf = widened(x, g.xSize()), wf = widened(w, g.wSize());
#ifdef SC_HAVE_DNNL
  if (useDnnl()) return convForwardDnnl(g, xf.data(), wf.data(), bias, y);
#endif
  convForwardIm2col(g, xf.data(), wf.data(), bias, y);
}

void convBackwardWidened(const ConvGeom& g, const uint16_t* x, const uint16_t* w, const float* gy, float* gx,
                         float* gw, float* gb, bool setGx) {
  const std::vector<float> xf = widened(x, g.xSize()), wf = widened(w, g.wSize());
  std::vector<uint16_t> gyb(static_cast<size_t>(g.ySize()));
  toBf16(gy, gyb.data(), g.ySize());
  const std::vector<float> gyf = widened(gyb.data(), g.ySize());
#ifdef SC_HAVE_DNNL
  if (useDnnl()) return convBackwardDnnl(g, xf.data(), wf.data(), gyf.data(), gx, gw, gb, setGx);
#endif
  if (setGx && gx) std::memset(gx, 0, sizeof(float) * static_cast<size_t>(g.xSize()));
  convBackwardIm2col(g, xf.data(), wf.data(), gyf.data(), gx, gw, gb);
}

// conv2dBf16(geometry, x bf16, w bf16, bias|null, y)
napi_value Conv2dBf16Kernel(Args& a) {
  const ConvGeom g = convGeom(a, 0);
  const U16 x = a.u16(1, "x"), w = a.u16(2, "w");
  const F32 bias = a.f32OrNull(3, "bias"), y = a.f32(4, "y");
  a.need(x, g.xSize(), "x");
  a.need(w, g.wSize(), "w");
  a.need(y, g.ySize(), "y");
  if (bias.p) a.need(bias, g.outC, "bias");
  if (g.batch == 0) return undefinedValue(a.env());
#ifdef SC_HAVE_DNNL
  if (useDnnl() && convForwardDnnlBf16(g, x.p, w.p, bias.p, y.p)) return undefinedValue(a.env());
#endif
  convForwardWidened(g, x.p, w.p, bias.p, y.p);
  return undefinedValue(a.env());
}

// conv2dBackwardBf16(geometry, x bf16, w bf16, gy, gx|null, gw, gBias|null[, setGx])
napi_value Conv2dBackwardBf16Kernel(Args& a) {
  const ConvGeom g = convGeom(a, 0);
  const U16 x = a.u16(1, "x"), w = a.u16(2, "w");
  const F32 gy = a.f32(3, "gy"), gx = a.f32OrNull(4, "gx"), gw = a.f32(5, "gw"), gb = a.f32OrNull(6, "gBias");
  a.need(x, g.xSize(), "x");
  a.need(w, g.wSize(), "w");
  a.need(gy, g.ySize(), "gy");
  a.need(gw, g.wSize(), "gw");
  if (gx.p) a.need(gx, g.xSize(), "gx");
  if (gb.p) a.need(gb, g.outC, "gBias");
  const bool setGx = a.argCount() > 7 && a.flag(7);
  if (g.batch == 0) return undefinedValue(a.env());
#ifdef SC_HAVE_DNNL
  if (useDnnl() && convBackwardDnnlBf16(g, x.p, w.p, gy.p, gx.p, gw.p, gb.p, setGx)) return undefinedValue(a.env());
#endif
  convBackwardWidened(g, x.p, w.p, gy.p, gx.p, gw.p, gb.p, setGx);
  return undefinedValue(a.env());
}

/** Test/benchmark hook: the oneDNN implementation(s) the last bf16 convolution ran. */
napi_value LastConvBf16Impl(Args& a) {
#ifdef SC_HAVE_DNNL
  return stringValue(a.env(), lastConvBf16Impl());
#else
  return stringValue(a.env(), "float32 fallback (no oneDNN)");
#endif
}

/** Test/benchmark hook: setConvEngine("auto" | "im2col" | "dnnl-plain" | "dnnl-blocked" | "dnnl-winograd"). */
napi_value SetConvEngine(Args& a) {
  const std::string name = a.str(0, "engine");
  if (name == "auto" || name == "im2col") {
    g_engine = name == "auto" ? ConvEngine::Auto : ConvEngine::Im2col;
#ifdef SC_HAVE_DNNL
    setConvLayoutPolicy(0);
  } else if (name == "dnnl-plain" || name == "dnnl-blocked" || name == "dnnl-winograd") {
    g_engine = ConvEngine::Auto;
    setConvLayoutPolicy(name == "dnnl-plain" ? 1 : name == "dnnl-blocked" ? 2 : 3);
#endif
  } else {
    throwRange("setConvEngine: engine '" + name + "' is not compiled into this addon");
  }
  return undefinedValue(a.env());
}

}  // namespace

void registerConv(napi_env env, napi_value exports) {
  defineFunction(env, exports, "conv2d", entry<Conv2dKernel>);
  defineFunction(env, exports, "conv2dBackward", entry<Conv2dBackwardKernel>);
  defineFunction(env, exports, "setConvEngine", entry<SetConvEngine>);
  defineFunction(env, exports, "conv2dBf16", entry<Conv2dBf16Kernel>);
  defineFunction(env, exports, "conv2dBackwardBf16", entry<Conv2dBackwardBf16Kernel>);
  defineFunction(env, exports, "lastConvBf16Impl", entry<LastConvBf16Impl>);
}

}  // namespace sc
