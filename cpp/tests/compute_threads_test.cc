// core/available_cpus and core/compute_threads: the CPU count a process may use (affinity
// mask and cgroup CPU quota), and work with more than one thread running on compute lanes
// that keep the process's OpenMP pools within those CPUs, whichever thread calls.
#include "core/compute_threads.h"

#include <gtest/gtest.h>
#include <omp.h>
#include <pthread.h>
#include <sched.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "core/available_cpus.h"
#include "core/parallel.h"

namespace nle::test {

namespace {
namespace fs = std::filesystem;

struct CgroupTree {
  fs::path root;
  CgroupTree() {
    root = fs::temp_directory_path() / ("nle_cgroup_" + std::to_string(::getpid()) + "_" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(root);
    fs::create_directories(root);
  }
  ~CgroupTree() { fs::remove_all(root); }
  void write(const std::string& relative, const std::string& text) const {
    const fs::path path = root / relative;
    fs::create_directories(path.parent_path());
    std::ofstream(path) << text;
  }
};

std::string thread_name() {
  char name[32] = {};
  pthread_getname_np(pthread_self(), name, sizeof(name));
  return name;
}
}  // namespace

TEST(AvailableCpusTest, CgroupV2QuotaIsTheLeastOverTheCgroupAndItsAncestors) {
  const CgroupTree tree;
  tree.write("cpu.max", "max 100000\n");
  tree.write("kubepods/cpu.max", "400000 100000\n");
  tree.write("kubepods/pod1/cpu.max", "150000 100000\n");  // 1.5 CPUs: rounded up
  tree.write("kubepods/pod1/app/cpu.max", "max 100000\n");
  EXPECT_EQ(cgroup_cpu_quota("0::/kubepods/pod1/app\n", tree.root.string()), 2);
  EXPECT_EQ(cgroup_cpu_quota("0::/kubepods\n", tree.root.string()), 4);
  EXPECT_EQ(cgroup_cpu_quota("0::/\n", tree.root.string()), 0);  // "max": no quota
  EXPECT_EQ(cgroup_cpu_quota("0::/not/there\n", tree.root.string()), 0);
  tree.write("cpu.max", "50000 100000\n");  // half a CPU at the top (a container's own view)
  EXPECT_EQ(cgroup_cpu_quota("0::/\n", tree.root.string()), 1);
  EXPECT_EQ(cgroup_cpu_quota("0::/kubepods/pod1/app\n", tree.root.string()), 1);
}

TEST(AvailableCpusTest, CgroupV1QuotaIsReadUnderTheCpuControllersMount) {
  const CgroupTree tree;
  tree.write("cpu,cpuacct/docker/abc/cpu.cfs_quota_us", "300000\n");
  tree.write("cpu,cpuacct/docker/abc/cpu.cfs_period_us", "100000\n");
  const std::string v1 = "12:memory:/docker/abc\n4:cpu,cpuacct:/docker/abc\n1:name=systemd:/\n";
  EXPECT_EQ(cgroup_cpu_quota(v1, tree.root.string()), 3);
  // No quota (-1), and a cgroup path the mount does not show: its top is read.
  tree.write("cpu/cpu.cfs_quota_us", "-1\n");
  tree.write("cpu/cpu.cfs_period_us", "100000\n");
  EXPECT_EQ(cgroup_cpu_quota("3:cpu:/elsewhere\n", tree.root.string()), 0);
  tree.write("cpu/cpu.cfs_quota_us", "250000\n");
  EXPECT_EQ(cgroup_cpu_quota("3:cpu:/elsewhere\n", tree.root.string()), 3);
  // Garbage and lines without a cpu controller count as no quota.
  EXPECT_EQ(cgroup_cpu_quota("garbage\n5:memory:/x\n\n", tree.root.string()), 0);
  tree.write("cpu/cpu.cfs_quota_us", "lots\n");
  EXPECT_EQ(cgroup_cpu_quota("3:cpu:/elsewhere\n", tree.root.string()), 0);
}

TEST(AvailableCpusTest, AtMostTheAffinityMaskAndModelsUseNoMore) {
  cpu_set_t set;
  CPU_ZERO(&set);
  ASSERT_EQ(sched_getaffinity(0, sizeof(set), &set), 0);
  const int cpus = available_cpus();
  EXPECT_GE(cpus, 1);
  EXPECT_LE(cpus, CPU_COUNT(&set));
  EXPECT_EQ(default_num_threads(), cpus);
  EXPECT_EQ(model_num_threads(0), cpus);
  EXPECT_EQ(model_num_threads(1), 1);
  EXPECT_EQ(model_num_threads(cpus + 7), cpus);
}

TEST(ComputeThreadsTest, OneThreadRunsOnTheCallerAndMoreOnANamedLane) {
  const auto caller = std::this_thread::get_id();
  run_on_compute_threads(1, [&] {
    EXPECT_EQ(std::this_thread::get_id(), caller);
    EXPECT_EQ(omp_get_max_threads(), 1);
  });
  const int result = run_with_threads(2, [&] {
    EXPECT_NE(std::this_thread::get_id(), caller);
    EXPECT_EQ(thread_name(), "nle-compute");
    EXPECT_EQ(omp_get_max_threads(), 2);
    // Work started on a lane runs there, with its own thread count.
    const auto lane = std::this_thread::get_id();
    run_on_compute_threads(2, [&] { EXPECT_EQ(std::this_thread::get_id(), lane); });
    return 42;
  });
  EXPECT_EQ(result, 42);
}

TEST(ComputeThreadsTest, ErrorsReachTheCallerAndTheLaneServesAgain) {
  try {
    run_on_compute_threads(2, [] { throw std::invalid_argument("input_ids: bad"); });
    FAIL() << "no exception";
  } catch (const std::invalid_argument& e) {
    EXPECT_STREQ(e.what(), "input_ids: bad");
  }
  EXPECT_EQ(run_with_threads(2, [] { return 7; }), 7);
}

TEST(ComputeThreadsTest, ConcurrentCallersShareLanesWithinTheCpus) {
  // Eight callers, each summing with OpenMP threads: every sum is right, and the lanes'
  // OpenMP pools (num_threads - 1 threads each) stay within the CPUs beside one thread.
  const int cpus = available_cpus();
  const int threads = std::max(2, std::min(cpus, 4));
  std::atomic<int> wrong{0};
  std::vector<std::thread> callers;
  for (int c = 0; c < 8; ++c) {
    callers.emplace_back([&, c] {
      for (int round = 0; round < 20; ++round) {
        const int64_t n = 10000 + c * 100 + round;
        const int64_t sum = run_with_threads(threads, [n] {
          int64_t s = 0;
#pragma omp parallel for reduction(+ : s)
          for (int64_t i = 0; i < n; ++i) s += i;
          return s;
        });
        if (sum != n * (n - 1) / 2) ++wrong;
      }
    });
  }
  for (auto& t : callers) t.join();
  EXPECT_EQ(wrong.load(), 0);
  const int lanes = compute_lane_count();
  EXPECT_GE(lanes, 1);
  EXPECT_LE(lanes * (threads - 1), std::max(cpus - 1, threads - 1));
}

}  // namespace nle::test
