#include <mkl.h>
#include <omp.h>

#include <algorithm>
#include <limits>
#include <vector>

#include "core/scratch_buffer.h"
#include "ops/bf16_gemm.h"
#include "ops/check.h"
#include "ops/cpu/cache_size.h"
#include "ops/cpu/gemm_library.h"
#include "ops/cpu/onednn_matmul.h"
#include "ops/cpu/panel_gemm_f32.h"
#include "ops/cpu/panel_gemm_u8s8.h"
#include "ops/int8_gemm.h"
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

namespace {
// How float32 weights are packed here (pack_weight_f32).
enum class F32Packing { Mkl, OneDnnPrimitive, Panels };
F32Packing f32_packing() {
  if (cpu::gemm_library() == cpu::GemmLibrary::Mkl) return F32Packing::Mkl;
  return cpu::onednn::packs_weights(cpu::onednn::MatmulType::F32F32F32) ? F32Packing::OneDnnPrimitive
                                                                        : F32Packing::Panels;
}

// How int8 weights are packed here (pack_weight_s8): for MKL's packed product, for
// oneDNN's matmul primitive where it takes them in a layout of its own (with AVX-512 or
// AVX-VNNI), else into the panels of ops/cpu/panel_gemm_u8s8.h, at every row count:
// against oneDNN's GEMM function, which packs the plain weight on every call, they are
// faster at few rows and as fast at many (AVX2-only AMD EPYC, MiniLM and BART-base shapes).
enum class S8Packing { Mkl, OneDnnPrimitive, Panels };
S8Packing s8_packing() {
  if (cpu::gemm_library() == cpu::GemmLibrary::Mkl) return S8Packing::Mkl;
  return cpu::onednn::packs_weights(cpu::onednn::MatmulType::U8S8S32) ? S8Packing::OneDnnPrimitive
                                                                      : S8Packing::Panels;
}
}  // namespace

int64_t packed_f32_max_rows() {
  switch (f32_packing()) {
    case F32Packing::Mkl:
      return 64;
    case F32Packing::OneDnnPrimitive:
    case F32Packing::Panels:
      break;
  }
  return std::numeric_limits<int64_t>::max();
}

PackedWeight pack_weight_f32(const Tensor& w) {
  check_cpu_f32("pack_weight_f32", {&w});
  check_rank("pack_weight_f32", "w", w, 2);
  // oneDNN: reordered for its matmul primitive, which also applies the bias and activation
  // in its kernel. Against the weight transposed for oneDNN's GEMM function (which
  // multiplies a plain (K, N) weight in place, as fast at every row count) followed by a
  // separate bias and GELU pass, MiniLM's batch-1 latency went from 8.82 to 8.45 ms at 1
  // thread and from 4.74 to 4.48 ms at 2 (AMD EPYC).
  if (f32_packing() == F32Packing::OneDnnPrimitive)
    return PackedWeight{
        cpu::onednn::reorder_weight(w.data<float>(), cpu::onednn::MatmulType::F32F32F32, w.dim(0), w.dim(1)),
        w.dim(0), w.dim(1)};
  if (f32_packing() == F32Packing::Panels)
    return PackedWeight{cpu::pack_panels_f32(w.data<float>(), w.dim(0), w.dim(1)), w.dim(0), w.dim(1)};
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
  if (s8_packing() == S8Packing::OneDnnPrimitive)
    return PackedWeight{
        cpu::onednn::reorder_weight(q.data<int8_t>(), cpu::onednn::MatmulType::U8S8S32, q.dim(0), q.dim(1)),
        q.dim(0), q.dim(1)};
  if (s8_packing() == S8Packing::Panels)
    return PackedWeight{cpu::pack_panels_s8(q.data<int8_t>(), q.dim(0), q.dim(1)), q.dim(0), q.dim(1)};
  const auto n = static_cast<MKL_INT>(q.dim(0)), k = static_cast<MKL_INT>(q.dim(1));
  PackedWeight out{library_buffer(cblas_gemm_s8u8s32_pack_get_size(CblasBMatrix, kAnyRows, n, k)), n, k};
  cblas_gemm_s8u8s32_pack(CblasRowMajor, CblasBMatrix, CblasTrans, kAnyRows, n, k, q.data<int8_t>(), k,
                          out.data.get());
  return out;
}

bool packs_bf16_weights() {
  return cpu::gemm_library() == cpu::GemmLibrary::OneDnn &&
         cpu::onednn::implemented(cpu::onednn::MatmulType::BF16BF16F32);
}

PackedWeight pack_weight_bf16(const Tensor& w) {
  check_rank("pack_weight_bf16", "w", w, 2);
  if (w.dtype() != DType::BF16 || w.device() != Device::CPU)
    throw InvalidInputError(std::string("pack_weight_bf16: expected a CPU BF16 tensor, got ") +
                            dtype_name(w.dtype()));
  if (!packs_bf16_weights())
    throw Error(cpu::gemm_library() == cpu::GemmLibrary::OneDnn
                    ? "pack_weight_bf16: oneDNN has no bf16 matmul for this CPU (it needs AVX-512)"
                    : "pack_weight_bf16: only oneDNN takes packed bf16 weights");
  return PackedWeight{cpu::onednn::reorder_weight(w.data<uint16_t>(), cpu::onednn::MatmulType::BF16BF16F32,
                                                  w.dim(0), w.dim(1)),
                      w.dim(0), w.dim(1)};
}

namespace cpu {

void gemm_f32_packed(float* c, const float* a, const void* packed_b, int64_t m, int64_t n, int64_t k,
                     const float* bias, Activation act) {
  if (m == 0 || n == 0) return;
  if (f32_packing() == F32Packing::OneDnnPrimitive) {
    onednn::matmul(c, a, packed_b, m, n, k, /*a_padded=*/false, /*c_padded=*/false, {bias, act});
    return;
  }
  if (f32_packing() == F32Packing::Panels) {
    gemm_f32_panels(c, a, packed_b, m, n, k, bias, act);
    return;
  }
  cblas_sgemm_compute(CblasRowMajor, CblasNoTrans, CblasPacked, static_cast<MKL_INT>(m),
                      static_cast<MKL_INT>(n), static_cast<MKL_INT>(k), a, static_cast<MKL_INT>(k),
                      static_cast<const float*>(packed_b), static_cast<MKL_INT>(k), 0.f, c,
                      static_cast<MKL_INT>(n));
  if (bias || act != Activation::None) bias_activation_f32(c, bias, m, n, act);
}

void gemm_bf16_packed(void* c, const uint16_t* a, const void* packed_b, int64_t m, int64_t n, int64_t k,
                      bool a_padded, const float* bias, Activation act, bool c_bf16) {
  if (m == 0 || n == 0) return;
  onednn::matmul(c, a, packed_b, m, n, k, a_padded, /*c_padded=*/false, {bias, act, c_bf16});
}

int64_t packed_s8_rows(int64_t m) {
  return s8_packing() == S8Packing::OneDnnPrimitive ? onednn::padded_rows(m) : m;
}

void gemm_u8s8s32_packed(int32_t* c, const uint8_t* a, const void* packed_b, int64_t m, int64_t n,
                         int64_t k) {
  if (m == 0 || n == 0) return;
  if (s8_packing() == S8Packing::OneDnnPrimitive) {
    onednn::matmul(c, a, packed_b, m, n, k, /*a_padded=*/true, /*c_padded=*/true);
    return;
  }
  if (s8_packing() == S8Packing::Panels) {
    gemm_u8s8s32_panels(c, a, packed_b, m, n, k);
    return;
  }
  const MKL_INT32 no_offset = 0;
  cblas_gemm_s8u8s32_compute(CblasRowMajor, CblasNoTrans, CblasPacked, CblasFixOffset,
                             static_cast<MKL_INT>(m), static_cast<MKL_INT>(n), static_cast<MKL_INT>(k), 1.f,
                             a, static_cast<MKL_INT>(k), 0, packed_b, static_cast<MKL_INT>(k), 0, 0.f, c,
                             static_cast<MKL_INT>(n), &no_offset);
}

namespace {
// The rows of gemm_u8s8s32_packed_blocks' blocks: a power of two from 32 (so that the
// blocks cut oneDNN's chunks of kChunkRows only at whole steps, within the caller's padded
// rows), at most kChunkRows; m where the product is not blocked.
int64_t s8_block_rows(int64_t m, int64_t n, int64_t k) {
  static_assert((onednn::kChunkRows & (onednn::kChunkRows - 1)) == 0 && onednn::kChunkRows >= 32,
                "blocks of a power of two rows divide oneDNN's chunks");
  const int64_t half = l2_cache_bytes() / 2;
  if (s8_packing() == S8Packing::Panels || n * k > half || (omp_get_max_threads() > 1 && !omp_in_parallel()))
    return m;
  int64_t rows = 32;
  while (rows < onednn::kChunkRows && 2 * rows * n * static_cast<int64_t>(sizeof(int32_t)) <= half) rows *= 2;
  return std::min(rows, m);
}
}  // namespace

void gemm_u8s8s32_packed_blocks(const uint8_t* a, const void* packed_b, int64_t m, int64_t n, int64_t k,
                                const std::function<void(int64_t, int64_t, const int32_t*)>& use) {
  if (m == 0 || n == 0) return;
  const int64_t block = s8_block_rows(m, n, k);
  thread_local ScratchBuffer<int32_t> acc_buffer;
  int32_t* acc = acc_buffer.get(static_cast<size_t>(packed_s8_rows(block) * n));
  for (int64_t first = 0; first < m; first += block) {
    const int64_t rows = std::min(block, m - first);
    gemm_u8s8s32_packed(acc, a + first * k, packed_b, rows, n, k);
    use(first, rows, acc);
  }
}

void gemm_u8s8_dequantize_packed(void* y, const uint8_t* a, const void* packed_b, int64_t m, int64_t n,
                                 int64_t k, const S8Dequantization& dq, bool y_bf16) {
  if (m == 0 || n == 0) return;
  if (s8_packing() == S8Packing::Panels) {
    if (!y_bf16) {
      gemm_u8s8_dequantize_panels(static_cast<float*>(y), a, packed_b, m, n, k, dq);
      return;
    }
    thread_local ScratchBuffer<float> f32;
    float* y_f32 = f32.get(static_cast<size_t>(m * n));
    gemm_u8s8_dequantize_panels(y_f32, a, packed_b, m, n, k, dq);
    float_to_bf16(static_cast<uint16_t*>(y), y_f32, m * n);
    return;
  }
  gemm_u8s8s32_packed_blocks(a, packed_b, m, n, k, [&](int64_t first, int64_t rows, const int32_t* acc) {
    const int32_t* row_zero = dq.row_zero ? dq.row_zero + first : nullptr;
    if (y_bf16)
      dequantize_rows_bf16(static_cast<uint16_t*>(y) + first * n, acc, dq.row_scale + first, row_zero,
                           dq.col_scale, dq.col_sum, dq.bias, rows, n, dq.act);
    else
      dequantize_rows(static_cast<float*>(y) + first * n, acc, dq.row_scale + first, row_zero, dq.col_scale,
                      dq.col_sum, dq.bias, rows, n, dq.act);
  });
}

}  // namespace cpu
}  // namespace nle::ops
