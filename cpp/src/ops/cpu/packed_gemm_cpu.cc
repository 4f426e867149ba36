#include <mkl.h>

#include "ops/check.h"
#include "ops/packed_gemm.h"

namespace nle::ops {

namespace {
std::shared_ptr<void> library_buffer(size_t bytes) {
  // The library asks for a generous upper bound; only the pages it writes get memory.
  void* p = mkl_malloc(bytes, 64);
  if (!p) throw Error("out of memory packing a weight (" + std::to_string(bytes) + " bytes)");
  return std::shared_ptr<void>(p, [](void* q) { mkl_free(q); });
}
// Packing depends on N and K only; the row count here is a placeholder.
constexpr MKL_INT kAnyRows = 64;
}  // namespace

PackedWeight pack_weight_f32(const Tensor& w) {
  check_cpu_f32("pack_weight_f32", {&w});
  check_rank("pack_weight_f32", "w", w, 2);
  const auto n = static_cast<MKL_INT>(w.dim(0)), k = static_cast<MKL_INT>(w.dim(1));
  PackedWeight out{library_buffer(cblas_sgemm_pack_get_size(CblasBMatrix, kAnyRows, n, k)), n, k};
  cblas_sgemm_pack(CblasRowMajor, CblasBMatrix, CblasTrans, kAnyRows, n, k, 1.f, w.data<float>(), k,
                   static_cast<float*>(out.data.get()));
  return out;
}

PackedWeight pack_weight_s8(const Tensor& q) {
  check_rank("pack_weight_s8", "q", q, 2);
  if (q.dtype() != DType::I8 || q.device() != Device::CPU)
    throw InvalidInputError(std::string("pack_weight_s8: expected a CPU I8 tensor, got ") +
                            dtype_name(q.dtype()));
  const auto n = static_cast<MKL_INT>(q.dim(0)), k = static_cast<MKL_INT>(q.dim(1));
  PackedWeight out{library_buffer(cblas_gemm_s8u8s32_pack_get_size(CblasBMatrix, kAnyRows, n, k)),
                   n, k};
  cblas_gemm_s8u8s32_pack(CblasRowMajor, CblasBMatrix, CblasTrans, kAnyRows, n, k, q.data<int8_t>(),
                          k, out.data.get());
  return out;
}

namespace cpu {

void gemm_f32_packed(float* c, const float* a, const void* packed_b, int64_t m, int64_t n, int64_t k) {
  if (m == 0 || n == 0) return;
  cblas_sgemm_compute(CblasRowMajor, CblasNoTrans, CblasPacked, static_cast<MKL_INT>(m),
                      static_cast<MKL_INT>(n), static_cast<MKL_INT>(k), a, static_cast<MKL_INT>(k),
                      static_cast<const float*>(packed_b), static_cast<MKL_INT>(k), 0.f, c,
                      static_cast<MKL_INT>(n));
}

void gemm_u8s8s32_packed(int32_t* c, const uint8_t* a, const void* packed_b, int64_t m, int64_t n,
                         int64_t k) {
  if (m == 0 || n == 0) return;
  const MKL_INT32 no_offset = 0;
  cblas_gemm_s8u8s32_compute(CblasRowMajor, CblasNoTrans, CblasPacked, CblasFixOffset,
                             static_cast<MKL_INT>(m), static_cast<MKL_INT>(n),
                             static_cast<MKL_INT>(k), 1.f, a, static_cast<MKL_INT>(k), 0, packed_b,
                             static_cast<MKL_INT>(k), 0, 0.f, c, static_cast<MKL_INT>(n), &no_offset);
}

}  // namespace cpu
}  // namespace nle::ops
