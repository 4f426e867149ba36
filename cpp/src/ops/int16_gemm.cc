#include "ops/int16_gemm.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <string>
#include <vector>

#include "core/mapped_file.h"
#include "core/scratch_buffer.h"
#include "ops/check.h"
#include "ops/cpu/gemm_library.h"
#include "ops/cpu/panel_gemm_s16.h"
#include "ops/hadamard.h"
#include "ops/int8_gemm.h"
#include "ops/weight_rows.h"

namespace nle::ops {

namespace {
int64_t even(int64_t k) { return (k + 1) / 2 * 2; }
}  // namespace

bool int8_mixed_uses_int16() { return !cpu::native_bf16_products(); }

bool int8_uses_int16() {
  static const bool uses = [] {
    if (const char* chosen = std::getenv("NLPENGINE_INT8_ARITHMETIC")) {
      const std::string name = chosen;
      if (name == "int16") return true;
      if (name == "int8") return false;
      throw Error("NLPENGINE_INT8_ARITHMETIC=" + name + ": expected int8 or int16");
    }
    if (cpu::bytes_multiply_faster_than_words()) return false;
    try {
      return int8_activation_max() < 255;
    } catch (const Error&) {  // no exact 8-bit products at all
      return true;
    }
  }();
  return uses;
}

int32_t int16_activation_max(int64_t k, int32_t code_max) {
  constexpr int64_t kInt32Max = 2147483647;
  const int64_t top = kInt32Max / (std::max<int64_t>(even(k), 1) * std::max(code_max, 1));
  return static_cast<int32_t>(std::min<int64_t>(top, 32767));
}

Int16Weight quantize_weight_int16(const Tensor& w, int32_t code_max, bool rotate) {
  check_float_weight("quantize_weight_int16", w);
  check_rank("quantize_weight_int16", "w", w, 2);
  const int64_t n = w.dim(0), k = w.dim(1);
  if (code_max < 1 || code_max > 32767 || int16_activation_max(k, code_max) < 1)
    throw InvalidInputError("quantize_weight_int16: weight codes within ±" + std::to_string(code_max) +
                            " leave no activation levels for " + std::to_string(k) + " input features");
  Int16Weight out;
  out.scale = Tensor(DType::F32, {n});
  out.code_max = code_max;
  out.wide = code_max > 127;
  out.out_features = n;
  out.in_features = k;
  out.rotation_block = rotate ? hadamard_block(k) : 1;
  out.panels = cpu::allocate_panels_s16(n, k, out.wide);
  const int64_t block = out.rotation_block;
  float* scale = out.scale.data<float>();
  const auto top = static_cast<float>(code_max);
  // A panel's rows at a time, quantized into a buffer and packed from there, and a chunk of
  // panels at a time, whose rows of a memory-mapped weight are given back once packed
  // (release_mapped_pages): the whole weight's codes (2 bytes a weight) and its float32
  // pages resident at once were the peak of a load (random-weight bart-base int8 in int16,
  // whose tied LM head is 50,265 x 768: 403 MB against 369 for 8-bit products).
  constexpr int64_t kPanelRows = cpu::kS16PanelColumns;
  constexpr int64_t kChunkPanels = 256;
  const int64_t panels = (n + kPanelRows - 1) / kPanelRows;
  for (int64_t chunk = 0; chunk < panels; chunk += kChunkPanels) {
    const int64_t end = std::min(panels, chunk + kChunkPanels);
#pragma omp parallel
    {
      std::vector<float> rotated(block > 1 ? static_cast<size_t>(k) : 0);
      std::vector<float> widened(w.dtype() != DType::F32 ? static_cast<size_t>(k) : 0);
      std::vector<int16_t> codes(static_cast<size_t>(kPanelRows * k));
#pragma omp for schedule(static)
      for (int64_t p = chunk; p < end; ++p) {
        const int64_t first = p * kPanelRows, rows = std::min(kPanelRows, n - first);
        for (int64_t i = 0; i < rows; ++i) {
          const float* row = weight_row_f32(w, first + i, widened.data());
          if (block > 1) {
            std::copy(row, row + k, rotated.begin());
            hadamard_rows(rotated.data(), 1, k, block);
            row = rotated.data();
          }
          float amax = 0.f;
          // Vectorized: as a chain of scalar maxima this loop was 29% of the int8 quantizer's time.
#pragma omp simd reduction(max : amax)
          for (int64_t c = 0; c < k; ++c) amax = std::max(amax, std::fabs(row[c]));
          const float s = amax > 0.f ? amax / top : 1.f;
          const float inv = 1.f / s;
          int16_t* q = codes.data() + i * k;
          for (int64_t c = 0; c < k; ++c)
            q[c] = static_cast<int16_t>(std::clamp(std::nearbyint(row[c] * inv), -top, top));
          scale[first + i] = s;
        }
        cpu::pack_panel_s16(out.panels.get(), p, codes.data(), n, k, out.wide);
      }
    }
    const int64_t first_row = chunk * kPanelRows, last_row = std::min(n, end * kPanelRows);
    release_mapped_pages(weight_rows_data(w, first_row), weight_rows_bytes(w, first_row, last_row));
  }
  return out;
}

void matmul_nt_int16(Tensor& y, const Tensor& x, const Int16Weight& w, const Tensor* bias, Activation act) {
  check_cpu_f32("matmul_nt_int16", {&y, &x});
  check_rank("matmul_nt_int16", "x", x, 2);
  check_rank("matmul_nt_int16", "y", y, 2);
  const int64_t m = x.dim(0), k = x.dim(1), n = w.out_features;
  if (!w.defined() || w.in_features != k || y.dim(0) != m || y.dim(1) != n)
    throw InvalidInputError("matmul_nt_int16: shapes x " + shape_to_string(x.shape()) + ", w (" +
                            std::to_string(n) + ", " + std::to_string(w.in_features) + "), y " +
                            shape_to_string(y.shape()) + " do not fit y = x · w^T");
  if (bias) {
    check_cpu_f32("matmul_nt_int16", {bias});
    if (bias->numel() != n)
      throw InvalidInputError("matmul_nt_int16: bias " + shape_to_string(bias->shape()) + " does not fit " +
                              std::to_string(n) + " outputs");
  }
  if (m == 0) return;
  // Per-thread scratch that grows to the largest call and is then reused.
  thread_local ScratchBuffer<int16_t> q_buffer;
  thread_local ScratchBuffer<float> row_scale_buffer;
  const int64_t lda = even(k);
  int16_t* q = q_buffer.get(static_cast<size_t>(m * lda));
  float* row_scale = row_scale_buffer.get(static_cast<size_t>(m));
  cpu::quantize_rows_s16(q, row_scale, x.data<float>(), m, k, lda, int16_activation_max(k, w.code_max),
                         w.rotation_block);
  cpu::S8Dequantization dq;
  dq.row_scale = row_scale;
  dq.col_scale = w.scale.data<float>();
  dq.bias = bias ? bias->data<float>() : nullptr;
  dq.act = act;
  cpu::gemm_s16_dequantize_panels(y.data<float>(), q, w.panels.get(), m, n, k, w.wide, dq);
}

}  // namespace nle::ops
