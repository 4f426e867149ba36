// Packed weights' memory (core/weight_memory.h): large buffers start on a 2 MB boundary and
// carry the huge page advice (the "hg" flag of their mapping in /proc/self/smaps), small
// ones are plain 64-byte aligned allocations; every byte is usable.
#include "core/weight_memory.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>

namespace nle::test {

namespace {
// The VmFlags of the mapping holding p, "" where none does.
std::string mapping_flags(const void* p) {
  std::ifstream smaps("/proc/self/smaps");
  std::string line;
  bool inside = false;
  const auto at = reinterpret_cast<uintptr_t>(p);
  while (std::getline(smaps, line)) {
    uintptr_t begin = 0, end = 0;
    char dash = 0;
    std::istringstream range(line);
    if (line.find(':') == std::string::npos || line.find('-') < line.find(':')) {
      if (range >> std::hex >> begin >> dash >> end && dash == '-') {
        inside = begin <= at && at < end;
        continue;
      }
    }
    if (inside && line.rfind("VmFlags:", 0) == 0) return line;
  }
  return "";
}
}  // namespace

TEST(WeightMemoryTest, LargeBuffersAreAdvisedHugePagesAndSmallOnesAreNot) {
  for (const size_t bytes : {size_t{4} << 20, (size_t{9} << 20) + 12345, size_t{150} << 20}) {
    const auto buffer = allocate_weight_memory(bytes);
    ASSERT_NE(buffer, nullptr);
    std::memset(buffer.get(), 0x5a, bytes);  // every byte is ours
    EXPECT_EQ(static_cast<const uint8_t*>(buffer.get())[bytes - 1], 0x5a);
#if defined(__linux__)
    if (weight_memory_on_huge_pages()) {
      EXPECT_EQ(reinterpret_cast<uintptr_t>(buffer.get()) % (size_t{2} << 20), 0u) << bytes << " bytes";
      EXPECT_NE(mapping_flags(buffer.get()).find(" hg"), std::string::npos)
          << bytes << " bytes: " << mapping_flags(buffer.get());
    }
#endif
  }
  for (const size_t bytes : {size_t{1}, size_t{4096}, (size_t{4} << 20) - 64}) {
    const auto buffer = allocate_weight_memory(bytes);
    ASSERT_NE(buffer, nullptr);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(buffer.get()) % 64, 0u);
    std::memset(buffer.get(), 0x5a, bytes);
#if defined(__linux__)
    EXPECT_EQ(mapping_flags(buffer.get()).find(" hg"), std::string::npos) << bytes << " bytes";
#endif
  }
}

}  // namespace nle::test
