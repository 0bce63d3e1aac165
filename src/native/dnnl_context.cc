// oneDNN engine and stream (see dnnl_context.h).
#include "dnnl_context.h"
#ifdef SC_HAVE_DNNL

namespace sc {

dnnl::engine& dnnlEngine() {
  static thread_local dnnl::engine eng(dnnl::engine::kind::cpu, 0);
  return eng;
}

dnnl::stream& dnnlStream() {
  static thread_local dnnl::stream s(dnnlEngine());
  return s;
}

}  // namespace sc

#endif  // SC_HAVE_DNNL
