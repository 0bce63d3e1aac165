// Convolution engines behind the conv2d / conv2dBackward kernels (conv.cc).
#pragma once

#include <cstdint>

#include "geometry.h"

namespace sc {

/** im2col + sgemm, one image at a time: the portable path (conv_im2col.cc). */
void convForwardIm2col(const ConvGeom& g, const float* x, const float* w, const float* bias, float* y);
void convBackwardIm2col(const ConvGeom& g, const float* x, const float* w, const float* gy, float* gx,
                        float* gw, float* gb);

#ifdef SC_HAVE_DNNL
/** oneDNN convolution primitives, cached per geometry (conv_dnnl.cc). */
void convForwardDnnl(const ConvGeom& g, const float* x, const float* w, const float* bias, float* y);
/** setGx: gx is overwritten rather than added into (the others always accumulate). */
void convBackwardDnnl(const ConvGeom& g, const float* x, const float* w, const float* gy, float* gx,
                      float* gw, float* gb, bool setGx);
/**
 * bf16 x and w (gy float32, rounded to bf16 by the primitive's input reorder); float32 outputs.
 * False when oneDNN has no bf16 kernel here (the caller then widens and runs float32).
 */
bool convForwardDnnlBf16(const ConvGeom& g, const uint16_t* x, const uint16_t* w, const float* bias, float* y);
bool convBackwardDnnlBf16(const ConvGeom& g, const uint16_t* x, const uint16_t* w, const float* gy, float* gx,
                          float* gw, float* gb, bool setGx);
/** The oneDNN implementation(s) the last bf16 convolution call ran, or "refused". */
const char* lastConvBf16Impl();
/** Policy: 0 = automatic, 1 = always plain NCHW (direct), 2 = always blocked layouts with the direct
 *  algorithm, 3 = blocked with Winograd wherever oneDNN has a kernel for the shape. */
void setConvLayoutPolicy(int policy);
#endif

}  // namespace sc
