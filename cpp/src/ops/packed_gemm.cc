#include "ops/packed_gemm.h"

#include <algorithm>
#include <vector>

#include "ops/bf16_gemm.h"
#include "ops/check.h"

namespace nle::ops {

void matmul_nt_packed(Tensor& y, const Tensor& x, const PackedWeight& w) {
  check_cpu_f32("matmul_nt_packed", {&y, &x});
  check_rank("matmul_nt_packed", "x", x, 2);
  check_rank("matmul_nt_packed", "y", y, 2);
  const int64_t m = x.dim(0), k = x.dim(1), n = w.out_features;
  if (w.in_features != k || y.dim(0) != m || y.dim(1) != n)
    throw InvalidInputError("matmul_nt_packed: shapes x " + shape_to_string(x.shape()) + ", w (" +
                            std::to_string(n) + ", " + std::to_string(w.in_features) + "), y " +
                            shape_to_string(y.shape()) + " do not fit y = x · w^T");
  cpu::gemm_f32_packed(y.data<float>(), x.data<float>(), w.data.get(), m, n, k);
}

void matmul_nt_bf16_packed(Tensor& y, const Tensor& x, const PackedWeight& w) {
  check_cpu_f32("matmul_nt_bf16_packed", {&y, &x});
  check_rank("matmul_nt_bf16_packed", "x", x, 2);
  check_rank("matmul_nt_bf16_packed", "y", y, 2);
  const int64_t m = x.dim(0), k = x.dim(1), n = w.out_features;
  if (w.in_features != k || y.dim(0) != m || y.dim(1) != n)
    throw InvalidInputError("matmul_nt_bf16_packed: shapes x " + shape_to_string(x.shape()) + ", w (" +
                            std::to_string(n) + ", " + std::to_string(w.in_features) + "), y " +
                            shape_to_string(y.shape()) + " do not fit y = x · w^T");
  if (m == 0) return;
  const int64_t rows = cpu::packed_s8_rows(m);  // room the product reads
  thread_local std::vector<uint16_t> a;         // grows to the largest call, then reused
  a.resize(static_cast<size_t>(rows * k));
  cpu::float_to_bf16(a.data(), x.data<float>(), m * k);
  std::fill(a.begin() + m * k, a.begin() + rows * k, uint16_t{0});
  cpu::gemm_bf16_packed(y.data<float>(), a.data(), w.data.get(), m, n, k);
}

}  // namespace nle::ops
