#pragma once

#include <cstdint>

namespace nle {

// Number of cores the runtime uses when none is requested.
int default_num_threads();

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
