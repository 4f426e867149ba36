#include "core/parallel.h"

#include <mkl.h>
#include <omp.h>

#include <algorithm>

#include "core/available_cpus.h"

namespace nle {

int default_num_threads() { return available_cpus(); }

int model_num_threads(int requested) {
  return requested > 0 ? std::min(requested, available_cpus()) : available_cpus();
}

ThreadScope::ThreadScope(int num_threads)
    : previous_omp_(omp_get_max_threads()), previous_mkl_(mkl_set_num_threads_local(num_threads)) {
  omp_set_num_threads(num_threads);
}

ThreadScope::~ThreadScope() {
  omp_set_num_threads(previous_omp_);
  mkl_set_num_threads_local(previous_mkl_);
}

}  // namespace nle
