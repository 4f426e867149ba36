// Reuse of large tensor buffers between calls. A fresh multi-megabyte allocation
// comes from the kernel as untouched pages, and every first touch is a page fault;
// an encode() or generate() call allocates the same activation sizes again and
// again, so keeping freed buffers and handing them back out saves that work. The pool
// never holds more, in use and kept together, than was ever in use at once: it does not
// raise the process's peak memory.
#pragma once

#include <cstddef>

namespace nle {

// At least `bytes` bytes, 64-byte aligned; nullptr when out of memory. Small
// requests go straight to the system allocator.
void* pool_allocate(size_t bytes);
// Returns a buffer from pool_allocate(bytes) (with the same `bytes`).
void pool_release(void* p, size_t bytes);
// Bytes of released buffers the pool keeps for reuse now.
size_t pool_cached_bytes();
// Frees every cached buffer and lowers the pool's bound (the most ever in use at once) to
// what is in use now: after a one-off large call, the memory its buffers held goes back.
void pool_trim();

}  // namespace nle
