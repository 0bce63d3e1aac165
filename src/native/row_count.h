// A kernel templated on how many rows of x it keeps in registers (an accumulator a row), called
// with a count known only at run time.
#pragma once

#include <type_traits>

namespace sc {

/** f(std::integral_constant<int, R>{}) with R = M for M in 1..7 and 8 above: the one switch such kernels are chosen by. */
template <class F>
inline void withRowCount(int M, F&& f) {
  switch (M) {
    case 1: return f(std::integral_constant<int, 1>{});
    case 2: return f(std::integral_constant<int, 2>{});
    case 3: return f(std::integral_constant<int, 3>{});
    case 4: return f(std::integral_constant<int, 4>{});
    case 5: return f(std::integral_constant<int, 5>{});
    case 6: return f(std::integral_constant<int, 6>{});
    case 7: return f(std::integral_constant<int, 7>{});
    default: return f(std::integral_constant<int, 8>{});
  }
}

}  // namespace sc
