// Pooling engines shared between pool.cc (kernels, own loops) and pool_dnnl.cc.
#pragma once

#include "geometry.h"

namespace sc {

#ifdef SC_HAVE_DNNL
/** Average pooling via oneDNN; false when oneDNN refuses the geometry (callers fall back). */
bool avgPoolDnnl(const PoolGeom& g, const float* x, float* y);
/** gx += the average-pooling gradient, via oneDNN into a private buffer and an add. */
bool avgPoolBackwardDnnl(const PoolGeom& g, const float* gy, float* gx);
#endif

}  // namespace sc
