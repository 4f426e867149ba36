#include "ops/bf16_gemm.h"

#include <algorithm>

#include "core/mapped_file.h"
#include "core/scratch_buffer.h"
#include "ops/check.h"
#include "ops/cpu/gemm_library.h"

namespace nle::ops {

bool bf16_products_native() { return cpu::native_bf16_products(); }

Tensor to_bf16(const Tensor& x) {
  check_cpu_f32("to_bf16", {&x});
  Tensor out(DType::BF16, x.shape());
  to_bf16(out, x);
  return out;
}

void to_bf16(Tensor& out, const Tensor& x) {
  check_cpu_f32("to_bf16", {&x});
  if (out.dtype() != DType::BF16 || out.device() != Device::CPU || out.numel() != x.numel())
    throw InvalidInputError("to_bf16: out " + shape_to_string(out.shape()) + " " + dtype_name(out.dtype()) +
                            " does not hold x " + shape_to_string(x.shape()) + " in BF16");
  // 4 MB of values at a time, each part's memory-mapped pages given back as it is done
  // (release_mapped_pages; other memory is left alone): converted whole, a tied LM head's
  // float32 pages stayed resident beside its bf16 copy and the copy reordered from it
  // (bart-base generating in bf16: peak RSS 462 MB, 400 after).
  constexpr int64_t kPart = int64_t{1} << 20;
  const float* in = x.data<float>();
  for (int64_t i = 0; i < x.numel(); i += kPart) {
    const int64_t count = std::min(kPart, x.numel() - i);
    cpu::float_to_bf16(out.data<uint16_t>() + i, in + i, count);
    release_mapped_pages(in + i, static_cast<size_t>(count) * sizeof(float));
  }
}

void matmul_nt_bf16(Tensor& y, const Tensor& x, const Tensor& w) {
  check_cpu_f32("matmul_nt_bf16", {&y, &x});
  check_rank("matmul_nt_bf16", "x", x, 2);
  check_rank("matmul_nt_bf16", "w", w, 2);
  if (w.dtype() != DType::BF16)
    throw InvalidInputError(std::string("matmul_nt_bf16: w must be BF16, got ") + dtype_name(w.dtype()));
  const int64_t m = x.dim(0), k = x.dim(1), n = w.dim(0);
  if (w.dim(1) != k || y.dim(0) != m || y.dim(1) != n)
    throw InvalidInputError("matmul_nt_bf16: shapes x " + shape_to_string(x.shape()) + ", w " +
                            shape_to_string(w.shape()) + ", y " + shape_to_string(y.shape()) +
                            " do not fit y = x · w^T");
  if (m == 0) return;
  thread_local ScratchBuffer<uint16_t> a_buffer;
  uint16_t* a = a_buffer.get(static_cast<size_t>(m * k));
  cpu::float_to_bf16(a, x.data<float>(), m * k);
  cpu::gemm_bf16(y.data<float>(), a, w.data<uint16_t>(), m, n, k);
}

}  // namespace nle::ops
