#include "ops/gemm.h"

#include "ops/check.h"

namespace nle::ops {

void matmul_nt(Tensor& c, const Tensor& a, const Tensor& b, float alpha, float beta) {
  check_cpu_f32("matmul_nt", {&c, &a, &b});
  check_rank("matmul_nt", "a", a, 2);
  check_rank("matmul_nt", "b", b, 2);
  check_rank("matmul_nt", "c", c, 2);
  const int64_t m = a.dim(0), k = a.dim(1), n = b.dim(0);
  if (b.dim(1) != k || c.dim(0) != m || c.dim(1) != n)
    throw InvalidInputError("matmul_nt: shapes a " + shape_to_string(a.shape()) + ", b " +
                            shape_to_string(b.shape()) + ", c " + shape_to_string(c.shape()) +
                            " do not fit c = a · b^T");
  cpu::gemm_f32(c.data<float>(), a.data<float>(), b.data<float>(), false, true, m, n, k, k, k, n,
                alpha, beta);
}

}  // namespace nle::ops
