// Thin, allocation-free argument unpacking over the raw N-API C interface.
//
// The kernels are called many times per training step, so each entry point reads its arguments
// straight from napi_get_cb_info into a fixed array (node-addon-api's CallbackInfo heap-allocates
// past six arguments). Validation errors are C++ exceptions (ArgError) turned into JS TypeError /
// RangeError by `entry` below, so kernels never see a malformed buffer.
#pragma once

#include <node_api.h>

#include <cstddef>
#include <cstdint>
#include <string>

#include "denormals.h"

namespace sc {

struct F32 {
  float* p = nullptr;
  int64_t n = 0;
};

/** A bfloat16 buffer: the raw 16-bit patterns in a Uint16Array. */
struct U16 {
  uint16_t* p = nullptr;
  int64_t n = 0;
};

/** Raw bytes (a quantized weight's blocks) in a Uint8Array. */
struct U8 {
  uint8_t* p = nullptr;
  int64_t n = 0;
};

struct I32 {
  int32_t* p = nullptr;
  int64_t n = 0;
};

struct ArgError {
  enum Kind { Type, Range, Plain } kind;
  std::string message;
};

[[noreturn]] void throwType(const std::string& msg);
[[noreturn]] void throwRange(const std::string& msg);

class Args {
 public:
  static constexpr size_t kMax = 24;

  Args(napi_env env, napi_callback_info info);
  /**
   * The elements [from, from + count) of the JavaScript array `array` read as arguments 0..count − 1
   * (count ≤ kMax), `fn` naming them in errors (kept alive by the caller): a call's list of buffers.
   */
  Args(napi_env env, const char* fn, napi_value array, uint32_t from, uint32_t count);
  /** Argument i as the raw value (an array that an Args view reads). */
  napi_value value(size_t i) const { return arg(i); }

  napi_env env() const { return env_; }
  const char* fn() const { return fn_; }
  /** How many arguments the call passed (for optional trailing ones). */
  size_t argCount() const { return argc_; }

  /** A Float32Array (a Float64Array is refused: the native kernels are float32-only). */
  F32 f32(size_t i, const char* name) const;
  /** Like f32, but null/undefined gives an empty F32 with p == nullptr. */
  F32 f32OrNull(size_t i, const char* name) const;
  I32 i32(size_t i, const char* name) const;
  /** A Uint8Array (bytes: a quantized weight's blocks). */
  U8 u8(size_t i, const char* name) const;
  /** A Uint16Array holding bfloat16 values. */
  U16 u16(size_t i, const char* name) const;
  /** Like u16, but null/undefined gives an empty U16 with p == nullptr. */
  U16 u16OrNull(size_t i, const char* name) const;
  double num(size_t i, const char* name) const;
  /** An integer-valued number in [lo, hi]. */
  int64_t integer(size_t i, const char* name, int64_t lo = 0, int64_t hi = INT64_C(1) << 53) const;
  bool flag(size_t i) const;
  /** The pointer an N-API external holds (a native object JavaScript keeps as a handle). */
  void* external(size_t i, const char* name) const;
  std::string str(size_t i, const char* name) const;
  /** A Float64Array of small integers (shapes, strides, geometry), packed by the TS layer. */
  const double* ints(size_t i, const char* name, int64_t minLen) const;

  /** Buffer b must hold at least `count` elements. */
  void need(const F32& b, int64_t count, const char* name) const;
  void need(const I32& b, int64_t count, const char* name) const;
  void need(const U16& b, int64_t count, const char* name) const;
  void need(const U8& b, int64_t count, const char* name) const;

 private:
  napi_value arg(size_t i) const;
  /** need's check, whatever the buffer's element type. */
  void needElements(int64_t have, int64_t count, const char* name) const;
  napi_env env_;
  const char* fn_ = "?";
  napi_value argv_[kMax];
  size_t argc_ = kMax;
};

napi_value undefinedValue(napi_env env);
napi_value numberValue(napi_env env, double v);
napi_value boolValue(napi_env env, bool b);
napi_value stringValue(napi_env env, const std::string& s);

/** Wraps a kernel so that ArgError and library exceptions become JS exceptions. */
template <napi_value (*Impl)(Args&)>
napi_value entry(napi_env env, napi_callback_info info);

void reportException(napi_env env, const char* fn);

template <napi_value (*Impl)(Args&)>
napi_value entry(napi_env env, napi_callback_info info) {
  const char* fn = "native";
  DenormalScope denormals;
  try {
    Args a(env, info);
    fn = a.fn();
    return Impl(a);
  } catch (...) {
    reportException(env, fn);
    return nullptr;
  }
}

/** Adds `name` as a function property of `exports`; `name` must be a string literal. */
void defineFunction(napi_env env, napi_value exports, const char* name, napi_callback cb);

}  // namespace sc
