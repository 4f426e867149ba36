#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <string>

#include "test_utils.h"

namespace nle::test {

std::string temp_path(const std::string& name) {
  static int counter = 0;
  const char* dir = std::getenv("TMPDIR");
  return std::string(dir ? dir : "/tmp") + "/nle_test_" + std::to_string(::getpid()) + "_" +
         std::to_string(counter++) + "_" + name;
}

}  // namespace nle::test

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
