// The softmax row steps every softmax kernel shares (softmax.cc, attention.cc, attention_bf16.cc).
#pragma once

#include <cstdint>

namespace sc {

/** Row maximum, the shift that keeps exp() from overflowing (NaN entries are skipped). */
float rowMax(const float* x, int64_t cols);

/** x := exp(x − m) in place; returns Σ exp(x − m) (vectorised exp; the sum in double lanes). */
double expShiftedSumInPlace(float* x, int64_t cols, float m);

}  // namespace sc
