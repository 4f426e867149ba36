// The CPU's cache sizes, for passes that size their blocks of rows (or decide whether to
// prefetch) by what stays in a core's cache.
#pragma once

#include <cstdint>

namespace nle::ops::cpu {

// The core's L2 cache in bytes, as the C library reports it (1 MB if it does not; clamped
// to 256 KB .. 16 MB).
int64_t l2_cache_bytes();

}  // namespace nle::ops::cpu
