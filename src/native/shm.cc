// Shared memory between processes on one host, for the shared-memory transport (src/comm/shm/).
//
// A segment is a POSIX shm object (shm_open + mmap) handed to JavaScript as an external ArrayBuffer;
// the mapping lives until that ArrayBuffer is collected. Signalling is a futex on an int32 word of the
// segment (shared, not FUTEX_PRIVATE: the waker is another process). JavaScript cannot block its event
// loop for long, so futexWait runs on the libuv pool and resolves a promise: true once the word is
// no longer `expected` (or a wake came), false when `timeoutMs` passed first. futexWaitSync is the
// short form for a process that expects a message any moment: it sleeps on the futex on the calling
// thread for at most a millisecond or so, so the peer's wake
// reaches this thread directly instead of a pool thread that then wakes the event loop (one wake-up
// per message instead of two). Linux only: elsewhere nothing is registered and the transport stays on TCP.
#include <node_api.h>

#include "napi_args.h"

#ifdef __linux__
#include <fcntl.h>
#include <sched.h>
#include <linux/futex.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <climits>
#include <cstring>
#include <ctime>
#endif

namespace sc {

#ifdef __linux__
namespace {

[[noreturn]] void throwErrno(const std::string& what) {
  throw ArgError{ArgError::Plain, what + ": " + std::strerror(errno)};
}

void unmap(napi_env, void* data, void* hint) { munmap(data, reinterpret_cast<size_t>(hint)); }

napi_value mapped(napi_env env, int fd, size_t bytes, const std::string& name) {
  void* p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  const int err = errno;
  close(fd);
  if (p == MAP_FAILED) {
    errno = err;
    throwErrno("mmap " + name);
  }
  napi_value ab;
  if (napi_create_external_arraybuffer(env, p, bytes, unmap, reinterpret_cast<void*>(bytes), &ab) != napi_ok) {
    munmap(p, bytes);
    throw ArgError{ArgError::Plain, "could not wrap shared memory " + name + " as an ArrayBuffer"};
  }
  return ab;
}

std::string segmentName(Args& a) {
  std::string name = a.str(0, "name");
  if (name.size() < 2 || name[0] != '/' || name.find('/', 1) != std::string::npos || name.size() > 200) {
    throwType("shared memory name must be '/' followed by up to 200 characters without '/', got '" + name + "'");
  }
  return name;
}

// shmCreate(name, bytes): a new zero-filled segment (fails if the name exists).
napi_value shmCreate(Args& a) {
  const std::string name = segmentName(a);
  const size_t bytes = static_cast<size_t>(a.integer(1, "bytes", 64, INT64_C(1) << 40));
  const int fd = shm_open(name.c_str(), O_CREAT | O_EXCL | O_RDWR, 0600);
  if (fd < 0) throwErrno("shm_open " + name);
  if (ftruncate(fd, static_cast<off_t>(bytes)) != 0) {
    const int err = errno;
    close(fd);
    shm_unlink(name.c_str());
    errno = err;
    throwErrno("ftruncate " + name);
  }
  return mapped(a.env(), fd, bytes, name);
}

// shmOpen(name, bytes): maps an existing segment of at least `bytes`.
napi_value shmOpen(Args& a) {
  const std::string name = segmentName(a);
  const size_t bytes = static_cast<size_t>(a.integer(1, "bytes", 64, INT64_C(1) << 40));
  const int fd = shm_open(name.c_str(), O_RDWR, 0600);
  if (fd < 0) throwErrno("shm_open " + name);
  struct stat st;
  if (fstat(fd, &st) != 0 || static_cast<size_t>(st.st_size) < bytes) {
    close(fd);
    throw ArgError{ArgError::Plain, "shared memory " + name + " is smaller than " + std::to_string(bytes) + " bytes"};
  }
  return mapped(a.env(), fd, bytes, name);
}

// shmUnlink(name): removes the name (mappings stay valid); true if it existed.
napi_value shmUnlink(Args& a) {
  const std::string name = segmentName(a);
  const bool removed = shm_unlink(name.c_str()) == 0;
  if (!removed && errno != ENOENT) throwErrno("shm_unlink " + name);
  return boolValue(a.env(), removed);
}

int* word(Args& a) {
  I32 v = a.i32(0, "flags");
  const int64_t i = a.integer(1, "index", 0, v.n - 1);
  return v.p + i;
}

// futexWake(flags, index): wakes every waiter on flags[index].
napi_value futexWake(Args& a) {
  int* w = word(a);
  syscall(SYS_futex, w, FUTEX_WAKE, INT_MAX, nullptr, nullptr, 0);
  return undefinedValue(a.env());
}

int64_t nowNs() {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return static_cast<int64_t>(t.tv_sec) * 1000000000 + t.tv_nsec;
}

// Looks at *w until it is no longer `expected` (true) or `end` (nowNs) has passed (false). Between
// looks, pause(nsLeft) waits its own way and returns true when a wake came.
template <class Pause>
bool watchWord(const int* w, int expected, int64_t end, Pause pause) {
  for (;;) {
    if (__atomic_load_n(w, __ATOMIC_SEQ_CST) != expected) return true;
    const int64_t left = end - nowNs();
    if (left <= 0) return false;
    if (pause(left)) return true;
  }
}

// The word, the value it must move from and the deadline of a synchronous wait (arguments 0–3,
// the last `name` in µs up to maxUs).
struct SyncWait {
  int* w;
  int expected;
  int64_t end;
};

SyncWait syncWait(Args& a, const char* name, int64_t maxUs) {
  int* w = word(a);
  const int expected = static_cast<int>(a.integer(2, "expected", INT32_MIN, INT32_MAX));
  const int64_t us = a.integer(3, name, 0, maxUs);
  return {w, expected, nowNs() + us * 1000};
}

// futexWaitSync(flags, index, expected, timeoutUs): true once flags[index] !== expected (or a wake
// came), false when timeoutUs passed. Blocks the calling thread: keep timeoutUs short.
napi_value futexWaitSync(Args& a) {
  const SyncWait s = syncWait(a, "timeoutUs", 100000);
  const bool changed = watchWord(s.w, s.expected, s.end, [&](int64_t left) {
    struct timespec ts;
    ts.tv_sec = static_cast<time_t>(left / 1000000000);
    ts.tv_nsec = static_cast<long>(left % 1000000000);
    // Woken (maybe spuriously: the caller looks at its rings either way).
    if (syscall(SYS_futex, s.w, FUTEX_WAIT, s.expected, &ts, nullptr, 0) == 0 || errno == EAGAIN) return true;
    if (errno != EINTR && errno != ETIMEDOUT) throwErrno("futex wait");
    return false;
  });
  return boolValue(a.env(), changed);
}

// spinWait(flags, index, expected, spinUs): true once flags[index] !== expected, false after spinUs of
// looking. Never sleeps: a sleeping waiter costs a wake system call on the writer's side and a wake-up
// of tens of microseconds on a virtual machine (docs/ALGORITHMS.md). It offers the core with
// sched_yield between looks, so a thread waiting for this core (on 2 cores, maybe the writer
// itself) runs instead of waiting for the spin to end.
napi_value spinWait(Args& a) {
  const SyncWait s = syncWait(a, "spinUs", 10000);
  const bool changed = watchWord(s.w, s.expected, s.end, [](int64_t) {
    sched_yield();
    return false;
  });
  return boolValue(a.env(), changed);
}

struct Wait {
  napi_async_work work = nullptr;
  napi_deferred deferred = nullptr;
  napi_ref keep = nullptr;  // the typed array, so the mapping outlives the wait
  int* word = nullptr;
  int expected = 0;
  int64_t timeoutMs = 0;
  bool changed = false;
};

void waitExecute(napi_env, void* data) {
  Wait* w = static_cast<Wait*>(data);
  struct timespec ts;
  ts.tv_sec = static_cast<time_t>(w->timeoutMs / 1000);
  ts.tv_nsec = static_cast<long>((w->timeoutMs % 1000) * 1000000);
  long rc = 0;
  do {
    if (__atomic_load_n(w->word, __ATOMIC_SEQ_CST) != w->expected) {
      w->changed = true;
      return;
    }
    rc = syscall(SYS_futex, w->word, FUTEX_WAIT, w->expected, &ts, nullptr, 0);
  } while (rc != 0 && errno == EINTR);
  w->changed = rc == 0 || errno == EAGAIN || __atomic_load_n(w->word, __ATOMIC_SEQ_CST) != w->expected;
}

void waitComplete(napi_env env, napi_status, void* data) {
  Wait* w = static_cast<Wait*>(data);
  napi_resolve_deferred(env, w->deferred, boolValue(env, w->changed));
  napi_delete_reference(env, w->keep);
  napi_delete_async_work(env, w->work);
  delete w;
}

// futexWait(flags, index, expected, timeoutMs): Promise<boolean>, off the event loop (see top). A raw
// callback, not entry<>: the promise keeps a reference to the typed array (so the mapping outlives the
// wait), which needs its napi_value.
napi_value futexWait(napi_env env, napi_callback_info info) {
  napi_value argv[4];
  size_t argc = 4;
  napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr);
  napi_typedarray_type type = napi_uint8_array;
  size_t length = 0;
  void* data = nullptr;
  bool isTyped = false;
  if (argc == 4) napi_is_typedarray(env, argv[0], &isTyped);
  if (isTyped) napi_get_typedarray_info(env, argv[0], &type, &length, &data, nullptr, nullptr);
  int64_t index = -1, expected = 0, timeoutMs = -1;
  if (!isTyped || type != napi_int32_array || napi_get_value_int64(env, argv[1], &index) != napi_ok ||
      napi_get_value_int64(env, argv[2], &expected) != napi_ok || napi_get_value_int64(env, argv[3], &timeoutMs) != napi_ok) {
    napi_throw_type_error(env, nullptr, "futexWait(flags: Int32Array, index, expected, timeoutMs)");
    return nullptr;
  }
  if (index < 0 || static_cast<size_t>(index) >= length || timeoutMs < 0 || timeoutMs > (INT64_C(1) << 31)) {
    napi_throw_range_error(env, nullptr, "futexWait: index outside flags or timeoutMs outside [0, 2^31]");
    return nullptr;
  }
  Wait* w = new Wait();
  w->word = static_cast<int*>(data) + index;
  w->expected = static_cast<int>(expected);
  w->timeoutMs = timeoutMs;
  napi_value promise, name;
  napi_create_promise(env, &w->deferred, &promise);
  napi_create_reference(env, argv[0], 1, &w->keep);
  napi_create_string_utf8(env, "smolcluster.futexWait", NAPI_AUTO_LENGTH, &name);
  napi_create_async_work(env, nullptr, name, waitExecute, waitComplete, w, &w->work);
  napi_queue_async_work(env, w->work);
  return promise;
}

}  // namespace
#endif

void registerShm(napi_env env, napi_value exports) {
#ifdef __linux__
  defineFunction(env, exports, "shmCreate", entry<shmCreate>);
  defineFunction(env, exports, "shmOpen", entry<shmOpen>);
  defineFunction(env, exports, "shmUnlink", entry<shmUnlink>);
  defineFunction(env, exports, "futexWake", entry<futexWake>);
  defineFunction(env, exports, "futexWait", futexWait);
  defineFunction(env, exports, "futexWaitSync", entry<futexWaitSync>);
  defineFunction(env, exports, "spinWait", entry<spinWait>);
#else
  (void)env;
  (void)exports;
#endif
}

}  // namespace sc
