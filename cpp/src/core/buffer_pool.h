// Reuse of large tensor buffers between calls. A fresh multi-megabyte allocation
// comes from the kernel as untouched pages, and every first touch is a page fault;
// an encode() or generate() call allocates the same activation sizes again and
// again, so keeping freed buffers and handing them back out saves that work.
#pragma once

#include <cstddef>

namespace nle {

// At least `bytes` bytes, 64-byte aligned; nullptr when out of memory. Small
// requests go straight to the system allocator.
void* pool_allocate(size_t bytes);
// Returns a buffer from pool_allocate(bytes) (with the same `bytes`).
void pool_release(void* p, size_t bytes);

}  // namespace nle
