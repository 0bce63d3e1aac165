// Optimizer updates over flat parameter arenas (torch.optim.SGD / Adam / AdamW semantics).
#include <cmath>

#include "napi_args.h"
#include "registry.h"
#include "simd.h"
#include "threads.h"

namespace sc {
namespace {

// Parameters per thread before an update forks (from 2 × kGrain): bench:threads on the quiet 2-core
// machine measured a second thread winning from ~1M parameters (262K: 0.73–0.90×; 1M: 1.22–1.50×).
constexpr int64_t kGrain = 1 << 19;

struct Sgd {
  float lr, momentum, dampening, wd;
  bool nesterov, first;
};

// The loops below read their hyper-parameters into locals and branch outside the loop, so each is
// one straight vectorisable body (a store through p[] could otherwise alias a field of the struct,
// and a mode test inside keeps GCC from vectorising); with -fno-math-errno, sqrt is vsqrtps.

SC_VECTOR_KERNEL(void, sgdRange, (const Sgd& h, float* SC_RESTRICT p, const float* SC_RESTRICT g, float* SC_RESTRICT buf,
              int64_t lo, int64_t hi), (h, p, g, buf, lo, hi)) {
  const float lr = h.lr, wd = h.wd, mu = h.momentum, keep = 1.0f - h.dampening;
  if (!buf) {
    for (int64_t i = lo; i < hi; i++) p[i] -= lr * (g[i] + wd * p[i]);
  } else if (h.first) {  // torch: the buffer starts as the first (decayed) gradient
    if (h.nesterov) {
      for (int64_t i = lo; i < hi; i++) {
        const float d = g[i] + wd * p[i];
        buf[i] = d;
        p[i] -= lr * (d + mu * d);
      }
    } else {
      for (int64_t i = lo; i < hi; i++) {
        const float d = g[i] + wd * p[i];
        buf[i] = d;
        p[i] -= lr * d;
      }
    }
  } else if (h.nesterov) {
    for (int64_t i = lo; i < hi; i++) {
      const float d = g[i] + wd * p[i];
      const float b = mu * buf[i] + keep * d;
      buf[i] = b;
      p[i] -= lr * (d + mu * b);
    }
  } else {
    for (int64_t i = lo; i < hi; i++) {
      const float d = g[i] + wd * p[i];
      const float b = mu * buf[i] + keep * d;
      buf[i] = b;
      p[i] -= lr * b;
    }
  }
}

// sgdStep(param, grad, momentumBuf|null, lr, momentum, dampening, weightDecay, nesterov, firstStep)
napi_value SgdKernel(Args& a) {
  const F32 p = a.f32(0, "param"), g = a.f32(1, "grad"), buf = a.f32OrNull(2, "momentumBuf");
  Sgd h{static_cast<float>(a.num(3, "lr")), static_cast<float>(a.num(4, "momentum")),
        static_cast<float>(a.num(5, "dampening")), static_cast<float>(a.num(6, "weightDecay")),
        a.flag(7), a.flag(8)};
  a.need(g, p.n, "grad");
  float* b = nullptr;
  if (h.momentum != 0 && buf.p) {
    a.need(buf, p.n, "momentumBuf");
    b = buf.p;
  }
  parallelRange(p.n, kGrain, [&](int64_t lo, int64_t hi) { sgdRange(h, p.p, g.p, b, lo, hi); });
  return undefinedValue(a.env());
}

struct Adam {
  // oneMinusBeta1/2 come from double: 1.0f - 0.999f is 0.000999987, which put every step ~7e-6
  // (relative) away from torch's update.
  float beta1, beta2, oneMinusBeta1, oneMinusBeta2, eps, l2, decay, stepSize, invSqrtBc2;
};

SC_VECTOR_KERNEL(void, adamRange, (const Adam& h, float* SC_RESTRICT p, const float* SC_RESTRICT g, float* SC_RESTRICT m,
               float* SC_RESTRICT v, int64_t lo, int64_t hi), (h, p, g, m, v, lo, hi)) {
  const float b1 = h.beta1, b2 = h.beta2, c1 = h.oneMinusBeta1, c2 = h.oneMinusBeta2, eps = h.eps, l2 = h.l2,
              decay = h.decay, stepSize = h.stepSize, invSqrtBc2 = h.invSqrtBc2;
  for (int64_t i = lo; i < hi; i++) {
    const float gi = g[i] + l2 * p[i];
    const float mi = b1 * m[i] + c1 * gi;
    const float vi = b2 * v[i] + c2 * gi * gi;
    m[i] = mi;
    v[i] = vi;
    p[i] = p[i] * decay - stepSize * mi / (std::sqrt(vi) * invSqrtBc2 + eps);
  }
}

// adamStep(param, grad, m, v, lr, beta1, beta2, eps, weightDecay, decoupled, step)
napi_value AdamKernel(Args& a) {
  const F32 p = a.f32(0, "param"), g = a.f32(1, "grad"), m = a.f32(2, "m"), v = a.f32(3, "v");
  const double lr = a.num(4, "lr"), beta1 = a.num(5, "beta1"), beta2 = a.num(6, "beta2"),
               eps = a.num(7, "eps"), wd = a.num(8, "weightDecay");
  const bool decoupled = a.flag(9);
  const double step = static_cast<double>(a.integer(10, "step", 1));
  a.need(g, p.n, "grad");
  a.need(m, p.n, "m");
  a.need(v, p.n, "v");
  // Bias corrections in double: 1 - beta^t loses digits in float for small t.
  const double bc1 = 1 - std::pow(beta1, step), bc2 = 1 - std::pow(beta2, step);
  const Adam h{static_cast<float>(beta1), static_cast<float>(beta2), static_cast<float>(1 - beta1),
               static_cast<float>(1 - beta2), static_cast<float>(eps),
               static_cast<float>(decoupled ? 0.0 : wd), static_cast<float>(decoupled ? 1 - lr * wd : 1.0),
               static_cast<float>(lr / bc1), static_cast<float>(1 / std::sqrt(bc2))};
  parallelRange(p.n, kGrain, [&](int64_t lo, int64_t hi) { adamRange(h, p.p, g.p, m.p, v.p, lo, hi); });
  return undefinedValue(a.env());
}

}  // namespace

void registerOptim(napi_env env, napi_value exports) {
  defineFunction(env, exports, "sgdStep", entry<SgdKernel>);
  defineFunction(env, exports, "adamStep", entry<AdamKernel>);
}

}  // namespace sc
