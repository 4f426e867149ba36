#include "core/buffer_pool.h"

#include <cstdlib>
#include <mutex>
#include <unordered_map>
#include <vector>

namespace nle {

namespace {

// Below this a request is served by malloc, which already recycles small blocks.
constexpr size_t kPooledBytes = size_t{1} << 16;
// Freed buffers kept for reuse, at most; beyond it they go back to the system.
constexpr size_t kMaxCachedBytes = size_t{256} << 20;

// Size classes: a power of two split into four steps, so at most 25% is wasted.
size_t size_class(size_t bytes) {
  size_t power = kPooledBytes;
  while (power * 2 < bytes) power *= 2;
  const size_t step = power / 4;
  return (bytes + step - 1) / step * step;
}

struct Pool {
  std::mutex mutex;
  std::unordered_map<size_t, std::vector<void*>> free_lists;
  size_t cached_bytes = 0;
};

Pool& pool() {
  static Pool* p = new Pool();  // never destroyed: buffers may be released at exit
  return *p;
}

}  // namespace

void* pool_allocate(size_t bytes) {
  if (bytes < kPooledBytes) return std::aligned_alloc(64, (bytes + 63) / 64 * 64);
  const size_t size = size_class(bytes);
  {
    Pool& p = pool();
    std::lock_guard<std::mutex> lock(p.mutex);
    auto it = p.free_lists.find(size);
    if (it != p.free_lists.end() && !it->second.empty()) {
      void* buffer = it->second.back();
      it->second.pop_back();
      p.cached_bytes -= size;
      return buffer;
    }
  }
  return std::aligned_alloc(64, size);
}

void pool_release(void* buffer, size_t bytes) {
  if (!buffer) return;
  if (bytes < kPooledBytes) {
    std::free(buffer);
    return;
  }
  const size_t size = size_class(bytes);
  {
    Pool& p = pool();
    std::lock_guard<std::mutex> lock(p.mutex);
    if (p.cached_bytes + size <= kMaxCachedBytes) {
      p.free_lists[size].push_back(buffer);
      p.cached_bytes += size;
      return;
    }
  }
  std::free(buffer);
}

}  // namespace nle
