// The conv2d / conv2dBackward kernels: validation, then oneDNN when built with it, else im2col.
#include <cstring>
#include <string>

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
}

}  // namespace sc
