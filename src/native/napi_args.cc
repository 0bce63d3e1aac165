// Argument unpacking and error reporting for the N-API entry points (see napi_args.h).
#include "napi_args.h"

#include <cmath>
#include <new>
#include <stdexcept>

namespace sc {

void throwType(const std::string& msg) { throw ArgError{ArgError::Type, msg}; }
void throwRange(const std::string& msg) { throw ArgError{ArgError::Range, msg}; }

static void check(napi_status status, const char* what) {
  if (status != napi_ok) throw ArgError{ArgError::Plain, std::string("N-API call failed: ") + what};
}

Args::Args(napi_env env, napi_callback_info info) : env_(env) {
  void* data = nullptr;
  check(napi_get_cb_info(env, info, &argc_, argv_, nullptr, &data), "napi_get_cb_info");
  if (data) fn_ = static_cast<const char*>(data);
  if (argc_ > kMax) argc_ = kMax;
}

Args::Args(napi_env env, const char* fn, napi_value array, uint32_t from, uint32_t count) : env_(env), fn_(fn), argc_(count) {
  if (count > kMax) throw ArgError{ArgError::Plain, std::string(fn) + ": more than " + std::to_string(kMax) + " elements at once"};
  bool isArray = false;
  check(napi_is_array(env, array, &isArray), "napi_is_array");
  uint32_t length = 0;
  if (isArray) check(napi_get_array_length(env, array, &length), "napi_get_array_length");
  if (!isArray || length < from + count)
    throwType(std::string(fn) + ": expected an array of at least " + std::to_string(from + count) + " elements");
  for (uint32_t i = 0; i < count; i++) check(napi_get_element(env, array, from + i, &argv_[i]), "napi_get_element");
}

napi_value Args::arg(size_t i) const {
  if (i >= argc_) throwType(std::string(fn_) + ": missing argument " + std::to_string(i));
  return argv_[i];
}

static const char* typedArrayName(napi_typedarray_type t) {
  switch (t) {
    case napi_float32_array: return "Float32Array";
    case napi_float64_array: return "Float64Array";
    case napi_int32_array: return "Int32Array";
    case napi_uint32_array: return "Uint32Array";
    case napi_int8_array: return "Int8Array";
    case napi_uint8_array: return "Uint8Array";
    case napi_uint8_clamped_array: return "Uint8ClampedArray";
    case napi_int16_array: return "Int16Array";
    case napi_uint16_array: return "Uint16Array";
    default: return "a typed array of another kind";
  }
}

/** Reads a typed array of the expected kind; returns its data pointer and element count. */
static void* typedArray(const Args& a, napi_value v, napi_typedarray_type want, const char* name,
                        int64_t* length) {
  bool is = false;
  napi_is_typedarray(a.env(), v, &is);
  const std::string where = std::string(a.fn()) + ": argument '" + name + "'";
  if (!is) throwType(where + " must be a " + typedArrayName(want));
  napi_typedarray_type type;
  size_t len = 0;
  void* data = nullptr;
  check(napi_get_typedarray_info(a.env(), v, &type, &len, &data, nullptr, nullptr),
        "napi_get_typedarray_info");
  if (type != want) {
    if (want == napi_float32_array && type == napi_float64_array)
      throwType(where + " is a Float64Array, but the native backend is float32-only");
    throwType(where + " must be a " + typedArrayName(want) + ", got " + typedArrayName(type));
  }
  *length = static_cast<int64_t>(len);
  return data;
}

F32 Args::f32(size_t i, const char* name) const {
  F32 r;
  r.p = static_cast<float*>(typedArray(*this, arg(i), napi_float32_array, name, &r.n));
  return r;
}

F32 Args::f32OrNull(size_t i, const char* name) const {
  napi_valuetype t;
  check(napi_typeof(env_, arg(i), &t), "napi_typeof");
  if (t == napi_null || t == napi_undefined) return F32{};
  return f32(i, name);
}

I32 Args::i32(size_t i, const char* name) const {
  I32 r;
  r.p = static_cast<int32_t*>(typedArray(*this, arg(i), napi_int32_array, name, &r.n));
  return r;
}

U8 Args::u8(size_t i, const char* name) const {
  U8 r;
  r.p = static_cast<uint8_t*>(typedArray(*this, arg(i), napi_uint8_array, name, &r.n));
  return r;
}

U16 Args::u16(size_t i, const char* name) const {
  U16 r;
  r.p = static_cast<uint16_t*>(typedArray(*this, arg(i), napi_uint16_array, name, &r.n));
  return r;
}

U16 Args::u16OrNull(size_t i, const char* name) const {
  napi_valuetype t;
  check(napi_typeof(env_, arg(i), &t), "napi_typeof");
  if (t == napi_null || t == napi_undefined) return U16{};
  return u16(i, name);
}

double Args::num(size_t i, const char* name) const {
  double v;
  if (napi_get_value_double(env_, arg(i), &v) != napi_ok)
    throwType(std::string(fn_) + ": argument '" + name + "' must be a number");
  return v;
}

int64_t Args::integer(size_t i, const char* name, int64_t lo, int64_t hi) const {
  const double v = num(i, name);
  if (!(v == std::floor(v)) || v < static_cast<double>(lo) || v > static_cast<double>(hi))
    throwRange(std::string(fn_) + ": argument '" + name + "' must be an integer in [" +
               std::to_string(lo) + ", " + std::to_string(hi) + "], got " + std::to_string(v));
  return static_cast<int64_t>(v);
}

void* Args::external(size_t i, const char* name) const {
  void* data = nullptr;
  if (napi_get_value_external(env_, arg(i), &data) != napi_ok || data == nullptr) {
    throwType(std::string(fn_) + ": argument '" + name + "' must be a native handle (an external)");
  }
  return data;
}

bool Args::flag(size_t i) const {
  bool b = false;
  if (napi_get_value_bool(env_, arg(i), &b) != napi_ok) {
    // Tolerate numbers (0/1) as well as booleans.
    double v = 0;
    if (napi_get_value_double(env_, arg(i), &v) != napi_ok)
      throwType(std::string(fn_) + ": argument " + std::to_string(i) + " must be a boolean");
    return v != 0;
  }
  return b;
}

std::string Args::str(size_t i, const char* name) const {
  char buf[256];
  size_t len = 0;
  if (napi_get_value_string_utf8(env_, arg(i), buf, sizeof buf, &len) != napi_ok)
    throwType(std::string(fn_) + ": argument '" + name + "' must be a string");
  return std::string(buf, len);
}

const double* Args::ints(size_t i, const char* name, int64_t minLen) const {
  int64_t n = 0;
  auto* p = static_cast<const double*>(typedArray(*this, arg(i), napi_float64_array, name, &n));
  if (n < minLen)
    throwRange(std::string(fn_) + ": '" + name + "' needs " + std::to_string(minLen) +
               " entries, got " + std::to_string(n));
  for (int64_t k = 0; k < minLen; k++)
    if (p[k] != std::floor(p[k]) || std::fabs(p[k]) > 9.007199254740992e15)
      throwRange(std::string(fn_) + ": '" + name + "' must hold integers");
  return p;
}

void Args::needElements(int64_t have, int64_t count, const char* name) const {
  if (count > have)
    throwRange(std::string(fn_) + ": buffer '" + name + "' has " + std::to_string(have) + " elements, needs " + std::to_string(count));
}

void Args::need(const U16& b, int64_t count, const char* name) const { needElements(b.n, count, name); }

void Args::need(const U8& b, int64_t count, const char* name) const { needElements(b.n, count, name); }

void Args::need(const F32& b, int64_t count, const char* name) const { needElements(b.n, count, name); }

void Args::need(const I32& b, int64_t count, const char* name) const { needElements(b.n, count, name); }

napi_value undefinedValue(napi_env env) {
  napi_value v;
  napi_get_undefined(env, &v);
  return v;
}

napi_value numberValue(napi_env env, double d) {
  napi_value v;
  napi_create_double(env, d, &v);
  return v;
}

napi_value boolValue(napi_env env, bool b) {
  napi_value v;
  napi_get_boolean(env, b, &v);
  return v;
}

napi_value stringValue(napi_env env, const std::string& s) {
  napi_value v;
  napi_create_string_utf8(env, s.data(), s.size(), &v);
  return v;
}

void reportException(napi_env env, const char* fn) {
  bool pending = false;
  napi_is_exception_pending(env, &pending);
  if (pending) return;  // an N-API call already raised one; keep it
  try {
    throw;
  } catch (const ArgError& e) {
    if (e.kind == ArgError::Type) napi_throw_type_error(env, nullptr, e.message.c_str());
    else if (e.kind == ArgError::Range) napi_throw_range_error(env, nullptr, e.message.c_str());
    else napi_throw_error(env, nullptr, e.message.c_str());
  } catch (const std::bad_alloc&) {
    napi_throw_error(env, nullptr, (std::string(fn) + ": out of memory").c_str());
  } catch (const std::exception& e) {
    napi_throw_error(env, nullptr, (std::string(fn) + ": " + e.what()).c_str());
  } catch (...) {
    napi_throw_error(env, nullptr, (std::string(fn) + ": unknown native error").c_str());
  }
}

void defineFunction(napi_env env, napi_value exports, const char* name, napi_callback cb) {
  napi_value fn;
  check(napi_create_function(env, name, NAPI_AUTO_LENGTH, cb, const_cast<char*>(name), &fn),
        "napi_create_function");
  check(napi_set_named_property(env, exports, name, fn), "napi_set_named_property");
}

}  // namespace sc
