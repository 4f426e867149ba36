#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "test_utils.h"

namespace nle::test {

namespace {
// Every path temp_path() handed out, removed when the tests end.
std::vector<std::string>& handed_out() {
  static std::vector<std::string> paths;
  return paths;
}
}  // namespace

std::string temp_path(const std::string& name) {
  static int counter = 0;
  const char* dir = std::getenv("TMPDIR");
  std::string path = std::string(dir ? dir : "/tmp") + "/nle_test_" + std::to_string(::getpid()) + "_" +
                     std::to_string(counter++) + "_" + name;
  handed_out().push_back(path);
  return path;
}

}  // namespace nle::test

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  const int result = RUN_ALL_TESTS();
  std::error_code ignored;  // a path a test never created, or removed itself
  for (const std::string& path : nle::test::handed_out()) std::filesystem::remove_all(path, ignored);
  return result;
}
