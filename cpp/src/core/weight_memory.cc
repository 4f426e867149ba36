#include "core/weight_memory.h"

#include <sys/mman.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>

namespace nle {

namespace {
constexpr size_t kHugePage = size_t{2} << 20;
// The smallest buffer put on huge pages. A huge page's first touch costs more than its
// 512 small pages' under this host's hypervisor (Firecracker, memory backed as the guest
// first touches it): from 2 MB, all-MiniLM-L6-v2's first float32 call took 33-61 ms
// against 34-40 (its 2.4 MB feed-forward weights), for no speed (sentences of 8-128
// tokens, 131 sentences/s either way). From 4 MB, the weights that a decoding step streams
// most of its bytes from (feed-forward, fused projections, LM heads) still qualify.
constexpr size_t kHugePagesFrom = size_t{4} << 20;
constexpr size_t kPage = 4096;

std::shared_ptr<void> aligned_memory(size_t bytes) {
  void* p = std::aligned_alloc(64, (bytes + 63) / 64 * 64);
  if (!p) return nullptr;
  return std::shared_ptr<void>(p, [](void* q) { std::free(q); });
}
}  // namespace

bool weight_memory_on_huge_pages() {
  static const bool on = [] {
    const char* v = std::getenv("NLPENGINE_HUGE_PAGES");
    return !(v && std::strcmp(v, "0") == 0);
  }();
  return on;
}

std::shared_ptr<void> allocate_weight_memory(size_t bytes) {
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  if (bytes < kHugePagesFrom || !weight_memory_on_huge_pages()) return aligned_memory(bytes);
  // A mapping of the pages the buffer needs, starting on a 2 MB boundary: reserved with a
  // huge page to spare, the ends trimmed. Its last partial 2 MB stays on 4 KB pages, so
  // nothing is allocated past the buffer.
  const size_t size = (bytes + kPage - 1) / kPage * kPage;
  const size_t reserved = size + kHugePage;
  void* mapped = ::mmap(nullptr, reserved, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (mapped == MAP_FAILED) return nullptr;
  const auto start = reinterpret_cast<uintptr_t>(mapped);
  const uintptr_t aligned = (start + kHugePage - 1) / kHugePage * kHugePage;
  if (aligned > start) ::munmap(mapped, aligned - start);
  const uintptr_t end = aligned + size;
  if (start + reserved > end) ::munmap(reinterpret_cast<void*>(end), start + reserved - end);
  void* buffer = reinterpret_cast<void*>(aligned);
  ::madvise(buffer, size, MADV_HUGEPAGE);  // advice: without it, 4 KB pages
  return std::shared_ptr<void>(buffer, [size](void* p) { ::munmap(p, size); });
#else
  return aligned_memory(bytes);
#endif
}

}  // namespace nle
