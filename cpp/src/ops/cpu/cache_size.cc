#include "ops/cpu/cache_size.h"

#include <unistd.h>

#include <algorithm>

namespace nle::ops::cpu {

int64_t l2_cache_bytes() {
  static const int64_t bytes = [] {
    const long reported = sysconf(_SC_LEVEL2_CACHE_SIZE);
    return reported > 0 ? std::clamp<int64_t>(reported, int64_t{256} << 10, int64_t{16} << 20)
                        : int64_t{1} << 20;
  }();
  return bytes;
}

}  // namespace nle::ops::cpu
