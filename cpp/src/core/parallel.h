#pragma once

#include <cstdint>

namespace nle {

// Number of threads a model uses when none is requested: the CPUs this process may
// compute on (available_cpus: its affinity mask, capped by its cgroup CPU quota).
int default_num_threads();

// The threads a model loaded with `requested` threads uses (0: the default): no more than
// the CPUs available. More threads than CPUs only wait for each other: every parallel
// region ends when its last thread is done, and with threads sharing a CPU that thread
// waits for a time slice. MiniLM at batch 1 on 2 CPUs, float32 / int8: 3.75 / 1.32 ms a
// call with 2 threads, 6.28 / 5.31 with 4.
int model_num_threads(int requested);

// Sets the intra-op thread count (our kernels and the GEMM library) for the
// calling thread for the scope's lifetime. Threads stay alive between calls
// (OpenMP's pool), so a call does not pay for waking fresh ones.
class ThreadScope {
 public:
  explicit ThreadScope(int num_threads);
  ~ThreadScope();
  ThreadScope(const ThreadScope&) = delete;
  ThreadScope& operator=(const ThreadScope&) = delete;

 private:
  int previous_omp_;
  int previous_mkl_;
};

}  // namespace nle
