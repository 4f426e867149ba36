#include "ops/packed_gemm.h"

#include <algorithm>
#include <string>

#include "core/scratch_buffer.h"
#include "ops/bf16_gemm.h"
#include "ops/check.h"

namespace nle::ops {

void matmul_nt_packed(Tensor& y, const Tensor& x, const PackedWeight& w, const Tensor* bias, Activation act) {
  check_cpu_f32("matmul_nt_packed", {&y, &x});
  check_rank("matmul_nt_packed", "x", x, 2);
  check_rank("matmul_nt_packed", "y", y, 2);
  const int64_t m = x.dim(0), k = x.dim(1), n = w.out_features;
  if (w.in_features != k || y.dim(0) != m || y.dim(1) != n)
    throw InvalidInputError("matmul_nt_packed: shapes x " + shape_to_string(x.shape()) + ", w (" +
                            std::to_string(n) + ", " + std::to_string(w.in_features) + "), y " +
                            shape_to_string(y.shape()) + " do not fit y = x · w^T");
  if (bias) {
    check_cpu_f32("matmul_nt_packed", {bias});
    if (bias->numel() != n)
      throw InvalidInputError("matmul_nt_packed: bias " + shape_to_string(bias->shape()) + " does not fit " +
                              std::to_string(n) + " outputs");
  }
  cpu::gemm_f32_packed(y.data<float>(), x.data<float>(), w.data.get(), m, n, k,
                       bias ? bias->data<float>() : nullptr, act);
}

void matmul_nt_bf16_packed(Tensor& y, const Tensor& x, const PackedWeight& w, const Tensor* bias,
                           Activation act) {
  const char* op = "matmul_nt_bf16_packed";
  for (const Tensor* t : {static_cast<const Tensor*>(&y), &x}) {
    if (t->device() != Device::CPU) throw Error(std::string(op) + " has no CUDA implementation yet");
    if (t->dtype() != DType::F32 && t->dtype() != DType::BF16)
      throw InvalidInputError(std::string(op) + ": expected F32 or BF16 tensors, got " +
                              dtype_name(t->dtype()));
  }
  check_rank(op, "x", x, 2);
  check_rank(op, "y", y, 2);
  const int64_t m = x.dim(0), k = x.dim(1), n = w.out_features;
  if (w.in_features != k || y.dim(0) != m || y.dim(1) != n)
    throw InvalidInputError(std::string(op) + ": shapes x " + shape_to_string(x.shape()) + ", w (" +
                            std::to_string(n) + ", " + std::to_string(w.in_features) + "), y " +
                            shape_to_string(y.shape()) + " do not fit y = x · w^T");
  if (bias) {
    check_cpu_f32(op, {bias});
    if (bias->numel() != n)
      throw InvalidInputError(std::string(op) + ": bias " + shape_to_string(bias->shape()) +
                              " does not fit " + std::to_string(n) + " outputs");
  }
  if (m == 0) return;
  const float* b = bias ? bias->data<float>() : nullptr;
  const bool y_bf16 = y.dtype() == DType::BF16;
  if (x.dtype() == DType::BF16) {
    cpu::gemm_bf16_packed(y.raw_data(), x.data<uint16_t>(), w.data.get(), m, n, k, /*a_padded=*/false, b, act,
                          y_bf16);
    return;
  }
  const int64_t rows = cpu::packed_s8_rows(m);  // room the product reads
  thread_local ScratchBuffer<uint16_t> a_buffer;
  uint16_t* a = a_buffer.get(static_cast<size_t>(rows * k));
  cpu::float_to_bf16(a, x.data<float>(), m * k);
  std::fill(a + m * k, a + rows * k, uint16_t{0});
  cpu::gemm_bf16_packed(y.raw_data(), a, w.data.get(), m, n, k, /*a_padded=*/true, b, act, y_bf16);
}

}  // namespace nle::ops
