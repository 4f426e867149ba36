#include "core/parallel.h"

#include <mkl.h>
#include <omp.h>

namespace nle {

int default_num_threads() { return omp_get_num_procs(); }

ThreadScope::ThreadScope(int num_threads)
    : previous_omp_(omp_get_max_threads()), previous_mkl_(mkl_set_num_threads_local(num_threads)) {
  omp_set_num_threads(num_threads);
}

ThreadScope::~ThreadScope() {
  omp_set_num_threads(previous_omp_);
  mkl_set_num_threads_local(previous_mkl_);
}

}  // namespace nle
