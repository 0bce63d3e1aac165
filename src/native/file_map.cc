// A range of a file mapped read-only into memory, for the frozen weights of a model file (a GGUF
// file's quantized blocks, one tensor a mapping): the pages are the page cache's, so every process
// on a host that maps the same file holds one copy of it between them, and none is read into a
// process's own heap. Handed to JavaScript as an external ArrayBuffer; the mapping lives until that
// ArrayBuffer is collected. A range, not the whole file: an ArrayBuffer holds at most 4 GiB in
// Node 20, and an 8B model's file is more. The memory is PROT_READ: a write through it is a fault,
// so only what never changes is bound to it.
// Linux only (elsewhere nothing is registered and the reader copies the bytes as before).
#include <node_api.h>

#include "napi_args.h"

#ifdef __linux__
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#endif

namespace sc {

#ifdef __linux__
namespace {

void unmapFile(napi_env, void* data, void* hint) { munmap(data, reinterpret_cast<size_t>(hint)); }

[[noreturn]] void throwFileErrno(const std::string& what, int err) {
  throw ArgError{ArgError::Plain, what + ": " + std::strerror(err)};
}

// mapFileReadOnly(path, offset, length): bytes [offset, offset + length) of the file, read-only and
// shared, as an ArrayBuffer that starts at the page holding `offset` (the caller views its tail of `length` bytes).
napi_value MapFileReadOnly(Args& a) {
  const std::string path = a.str(0, "path");
  const int64_t offset = a.integer(1, "offset");
  const int64_t length = a.integer(2, "length", 1);
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throwFileErrno("open " + path, errno);
  struct stat st;
  if (fstat(fd, &st) != 0) {
    const int err = errno;
    close(fd);
    throwFileErrno("fstat " + path, err);
  }
  if (offset + length > static_cast<int64_t>(st.st_size)) {
    close(fd);
    throw ArgError{ArgError::Plain, path + ": bytes " + std::to_string(offset) + ".." + std::to_string(offset + length) + " run past the file's end (" + std::to_string(st.st_size) + " bytes)"};
  }
  const int64_t page = sysconf(_SC_PAGESIZE);
  const int64_t start = offset - offset % page;
  const size_t bytes = static_cast<size_t>(offset + length - start);
  void* p = mmap(nullptr, bytes, PROT_READ, MAP_SHARED, fd, static_cast<off_t>(start));
  const int err = errno;
  close(fd);  // the mapping keeps the file
  if (p == MAP_FAILED) throwFileErrno("mmap " + path, err);
  napi_value ab;
  if (napi_create_external_arraybuffer(a.env(), p, bytes, unmapFile, reinterpret_cast<void*>(bytes), &ab) != napi_ok) {
    munmap(p, bytes);
    throw ArgError{ArgError::Plain, "could not wrap the mapping of " + path + " as an ArrayBuffer"};
  }
  return ab;
}

}  // namespace

void registerFileMap(napi_env env, napi_value exports) { defineFunction(env, exports, "mapFileReadOnly", entry<MapFileReadOnly>); }
#else
void registerFileMap(napi_env, napi_value) {}
#endif

}  // namespace sc
