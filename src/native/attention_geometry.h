// The attention kernels' sizes, as the TS layer packs them (src/tensor/backend.ts
// AttentionGeometry), parsed and checked once for the float32 kernel (attention.cc) and the bf16
// one (attention_bf16.cc).
#pragma once

#include <algorithm>
#include <cstdint>
#include <string>

#include "napi_args.h"

namespace sc {

struct AttentionGeometry {
  int64_t bh, tq, tk, d, dv, groups;
  float scale;
  bool causal;
  /** Positions from one k/v slice's start to the next (a KV cache's capacity; tk when packed). */
  int64_t cap;
  /** Keys the query at position i (0 ≤ i < tq) may see. */
  int64_t visible(int64_t i) const { return causal ? std::min(i + 1, tk) : tk; }
  /** k/v slices (bh / groups) and the query rows that read each one (groups · tq). */
  int64_t kvSlices() const { return bh / groups; }
  int64_t groupRows() const { return groups * tq; }
};

/**
 * Arguments 0..2: sizes [bh, tq, tk, d, dv, groups, kvCapacity] (a Float64Array), scale, causal;
 * `kernel` names the caller in its errors.
 */
inline AttentionGeometry attentionGeometry(const Args& a, const char* kernel) {
  const double* p = a.ints(0, "geometry", 7);
  for (int j = 0; j < 7; j++)
    if (p[j] < 0) throwRange(std::string(kernel) + ": sizes must be non-negative");
  const AttentionGeometry g{static_cast<int64_t>(p[0]), static_cast<int64_t>(p[1]), static_cast<int64_t>(p[2]),
                            static_cast<int64_t>(p[3]), static_cast<int64_t>(p[4]), static_cast<int64_t>(p[5]),
                            static_cast<float>(a.num(1, "scale")), a.flag(2), static_cast<int64_t>(p[6])};
  if (g.groups < 1 || g.bh % g.groups != 0) throwRange(std::string(kernel) + ": groups must be >= 1 and divide bh");
  if (g.cap < g.tk) throwRange(std::string(kernel) + ": kvCapacity must be >= tk");
  return g;
}

}  // namespace sc
