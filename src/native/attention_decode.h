// attention_decode.cc's decode step for other native callers (a fused decode layer: llama_decode.cc).
#pragma once

#include <cstdint>

#include "attention_geometry.h"

namespace sc {

/**
 * One decode position (g.tq = 1, no mask): each kv slice s stores kNew/vNew's row s at position
 * g.tk − 1 of k/v ([kv, g.cap, d]; float32, or bf16 bits rounded to nearest even), then its query
 * heads [s · g.groups, (s + 1) · g.groups) of q [bh, d] attend over [0, g.tk) into out [bh, dv].
 */
void attentionDecode(const AttentionGeometry& g, const float* q, const float* kNew, const float* vNew, float* k, float* v, float* out);
void attentionDecode(const AttentionGeometry& g, const float* q, const float* kNew, const float* vNew, uint16_t* k, uint16_t* v, float* out);

}  // namespace sc
