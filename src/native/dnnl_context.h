// Shared oneDNN state: the CPU engine and stream (one per JS thread), and a small cache type for
// primitives keyed by shape and parameters. Creating a primitive costs far more than running a
// small one, so every oneDNN kernel here looks its primitive up instead of rebuilding it.
#pragma once
#ifdef SC_HAVE_DNNL

#include <oneapi/dnnl/dnnl.hpp>

#include <cstdint>
#include <cstring>
#include <memory>
#include <unordered_map>

namespace sc {

dnnl::engine& dnnlEngine();
dnnl::stream& dnnlStream();

/** A cache key: the integers (and float bit patterns) that determine a primitive. */
/** Fixed capacity so that a lookup never allocates. */
struct Key {
  static constexpr int kCap = 32;
  int64_t v[kCap];
  int n = 0;
  Key& add(int64_t x) {
    if (n < kCap) v[n++] = x;
    return *this;
  }
  Key& add(float f) {
    uint32_t u;
    std::memcpy(&u, &f, 4);
    return add(static_cast<int64_t>(u));
  }
  bool operator==(const Key& o) const {
    return n == o.n && std::memcmp(v, o.v, sizeof(int64_t) * static_cast<size_t>(n)) == 0;
  }
};

struct KeyHash {
  size_t operator()(const Key& k) const {
    uint64_t h = 1469598103934665603ull;
    for (int i = 0; i < k.n; i++) h = (h ^ static_cast<uint64_t>(k.v[i])) * 1099511628211ull;
    return static_cast<size_t>(h);
  }
};

/** Thread-local map from Key to entry; cleared wholesale if it ever grows past `cap`. */
template <class Entry>
class PrimitiveCache {
 public:
  explicit PrimitiveCache(size_t cap) : cap_(cap) {}
  Entry* find(const Key& k) {
    auto it = map_.find(k);
    return it == map_.end() ? nullptr : it->second.get();
  }
  Entry* insert(const Key& k, std::unique_ptr<Entry> e) {
    if (map_.size() >= cap_) map_.clear();
    Entry* raw = e.get();
    map_[k] = std::move(e);
    return raw;
  }

 private:
  size_t cap_;
  std::unordered_map<Key, std::unique_ptr<Entry>, KeyHash> map_;
};

/** Plain row-major memory descriptor with explicit strides. */
inline dnnl::memory::desc stridedDesc(const dnnl::memory::dims& dims, const dnnl::memory::dims& strides) {
  return dnnl::memory::desc(dims, dnnl::memory::data_type::f32, strides);
}

inline dnnl::memory::desc plainDesc(const dnnl::memory::dims& dims, dnnl::memory::format_tag tag) {
  return dnnl::memory::desc(dims, dnnl::memory::data_type::f32, tag);
}

/** Points a cached memory object at this call's buffer (oneDNN never frees a user handle). */
inline void bind(const dnnl::memory& m, const void* p) { m.set_data_handle(const_cast<void*>(p)); }

}  // namespace sc

#endif  // SC_HAVE_DNNL
