#include "core/available_cpus.h"

#include <sched.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <sstream>
#include <vector>

namespace nle {
namespace {

bool read_words(const std::string& path, std::vector<std::string>& words) {
  std::ifstream in(path);
  if (!in) return false;
  words.clear();
  for (std::string word; in >> word;) words.push_back(word);
  return !words.empty();
}

bool parse_positive(const std::string& text, double& value) {
  try {
    size_t used = 0;
    value = std::stod(text, &used);
    return used == text.size() && value > 0 && std::isfinite(value);
  } catch (const std::exception&) {
    return false;
  }
}

// Whole CPUs a quota of `quota` microseconds per `period` grants, or 0 for none.
int cpus_of_quota(const std::string& quota, const std::string& period) {
  double q = 0, p = 0;
  if (!parse_positive(quota, q) || !parse_positive(period, p)) return 0;  // "max", -1: no quota
  return std::max(1, static_cast<int>(std::ceil(q / p - 1e-9)));
}

int least_positive(int a, int b) { return a == 0 ? b : (b == 0 ? a : std::min(a, b)); }

int cgroup_v2_quota(const std::string& root, std::string path) {
  int cpus = 0;
  std::vector<std::string> words;
  while (true) {
    const std::string dir = path == "/" ? root : root + path;
    if (read_words(dir + "/cpu.max", words) && words.size() == 2)
      cpus = least_positive(cpus, cpus_of_quota(words[0], words[1]));
    if (path == "/" || path.empty()) break;
    const size_t slash = path.find_last_of('/');
    path = slash == 0 ? "/" : path.substr(0, slash);
  }
  return cpus;
}

int cgroup_v1_quota(const std::string& root, const std::string& path) {
  std::vector<std::string> quota, period;
  for (const char* mount : {"/cpu", "/cpu,cpuacct", "/cpuacct,cpu"}) {
    // Inside a container the cgroup's path is often that of the host's view; the
    // container's own mount then shows its cgroup at the mount's top.
    for (const std::string& dir : {root + mount + (path == "/" ? "" : path), root + mount}) {
      if (read_words(dir + "/cpu.cfs_quota_us", quota) && read_words(dir + "/cpu.cfs_period_us", period))
        return cpus_of_quota(quota[0], period[0]);
    }
  }
  return 0;
}

}  // namespace

int cgroup_cpu_quota(const std::string& proc_self_cgroup, const std::string& cgroup_root) {
  std::istringstream lines(proc_self_cgroup);
  int cpus = 0;
  for (std::string line; std::getline(lines, line);) {
    // hierarchy-id:controller-list:path
    const size_t first = line.find(':');
    const size_t second = first == std::string::npos ? first : line.find(':', first + 1);
    if (second == std::string::npos) continue;
    const std::string hierarchy = line.substr(0, first);
    const std::string controllers = line.substr(first + 1, second - first - 1);
    const std::string path = line.substr(second + 1);
    if (path.empty() || path[0] != '/') continue;
    if (hierarchy == "0" && controllers.empty()) {
      cpus = least_positive(cpus, cgroup_v2_quota(cgroup_root, path));
      continue;
    }
    std::istringstream names(controllers);
    for (std::string name; std::getline(names, name, ',');) {
      if (name == "cpu") {
        cpus = least_positive(cpus, cgroup_v1_quota(cgroup_root, path));
        break;
      }
    }
  }
  return cpus;
}

int available_cpus() {
  static const int cpus = [] {
    int count = 0;
    cpu_set_t set;
    CPU_ZERO(&set);
    if (sched_getaffinity(0, sizeof(set), &set) == 0) count = CPU_COUNT(&set);
    if (count <= 0) {
      // More CPUs than a cpu_set_t holds (1,024): ask with a larger set.
      const int size = 1 << 16;
      cpu_set_t* big = CPU_ALLOC(size);
      if (big != nullptr) {
        const size_t bytes = CPU_ALLOC_SIZE(size);
        CPU_ZERO_S(bytes, big);
        if (sched_getaffinity(0, bytes, big) == 0) count = CPU_COUNT_S(bytes, big);
        CPU_FREE(big);
      }
    }
    count = std::max(count, 1);
    std::ifstream in("/proc/self/cgroup");
    std::stringstream text;
    text << in.rdbuf();
    const int quota = cgroup_cpu_quota(text.str(), "/sys/fs/cgroup");
    return quota > 0 ? std::min(count, quota) : count;
  }();
  return cpus;
}

}  // namespace nle
