#include "ops/int8_gemm.h"

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "core/mapped_file.h"
#include "core/parallel.h"
#include "core/scratch_buffer.h"
#include "ops/check.h"
#include "ops/hadamard.h"
#include "ops/weight_rows.h"

namespace nle::ops {

namespace {

// Rows of a weight read at a time where its memory-mapped pages are given back as it is
// read (release_mapped_pages; other memory is left alone): read whole, a tied LM head's
// float32 pages were all resident at once beside its codes, the peak of a load.
constexpr int64_t kReleaseChunkRows = 4096;

// Whether the library's plain and packed products sum activation codes up to a_max times
// weight codes up to w_max exactly, tried with the worst case (a_max · ±w_max in every
// pair) against the reference.
// One thread: called first from a thread of the caller's (nlpengine.int8_weight_max()), a
// parallel product would start an OpenMP pool there beside the compute lanes' (see
// core/compute_threads.h).
bool exact_products(uint8_t a_max, int8_t w_max) {
  const ThreadScope one_thread(1);
  const int64_t m = 3, n = 5, k = 64;
  std::vector<uint8_t> a(static_cast<size_t>(m * k), a_max);
  Tensor b(DType::I8, {n, k});
  int8_t* bq = b.data<int8_t>();
  for (int64_t i = 0; i < n * k; ++i) bq[i] = i % 3 == 0 ? static_cast<int8_t>(-w_max) : w_max;
  std::vector<int32_t> exact(static_cast<size_t>(m * n)), plain(exact.size());
  reference::gemm_u8s8s32(exact.data(), a.data(), bq, m, n, k);
  cpu::gemm_u8s8s32(plain.data(), a.data(), bq, m, n, k);
  if (plain != exact) return false;
  const PackedWeight packed = pack_weight_s8(b);
  const int64_t rows = cpu::packed_s8_rows(m);
  a.resize(static_cast<size_t>(rows * k), a_max);
  std::vector<int32_t> c(static_cast<size_t>(rows * n));
  cpu::gemm_u8s8s32_packed(c.data(), a.data(), packed.data.get(), m, n, k);
  return std::equal(exact.begin(), exact.end(), c.begin());
}

}  // namespace

Int8Codes int8_codes() {
  static const Int8Codes codes = [] {
    if (exact_products(255, 127)) return Int8Codes{255, 127};
    if (exact_products(127, 127)) return Int8Codes{127, 127};
    return Int8Codes{0, 0};
  }();
  if (codes.weight == 0)
    throw Error(
        "compute_type int8: this CPU's 8-bit integer products are not exact even with 7-bit "
        "activations; use compute_type float32");
  return codes;
}

int32_t int8_weight_max() { return int8_codes().weight; }

int32_t int8_activation_max() { return int8_codes().activation; }

Tensor smoothing_scales(const Tensor& w, const Tensor& norm_weight, const Tensor* norm_bias) {
  check_float_weight("smoothing_scales", w);
  check_cpu_f32("smoothing_scales", {&norm_weight});
  check_rank("smoothing_scales", "w", w, 2);
  const int64_t n = w.dim(0), k = w.dim(1);
  if (norm_weight.numel() != k || (norm_bias && norm_bias->numel() != k))
    throw InvalidInputError("smoothing_scales: norm parameters " + shape_to_string(norm_weight.shape()) +
                            " do not fit a weight of " + std::to_string(k) + " input features");
  if (norm_bias) check_cpu_f32("smoothing_scales", {norm_bias});
  constexpr float kFloor = 1e-6f;
  std::vector<float> w_max(static_cast<size_t>(k), 0.f), widened(static_cast<size_t>(k));
  for (int64_t chunk = 0; chunk < n; chunk += kReleaseChunkRows) {
    const int64_t end = std::min(n, chunk + kReleaseChunkRows);
    for (int64_t r = chunk; r < end; ++r) {
      const float* row = weight_row_f32(w, r, widened.data());
      for (int64_t c = 0; c < k; ++c) w_max[c] = std::max(w_max[c], std::fabs(row[c]));
    }
    release_mapped_pages(weight_rows_data(w, chunk), weight_rows_bytes(w, chunk, end));
  }
  Tensor s(DType::F32, {k});
  float* out = s.data<float>();
  const float* gamma = norm_weight.data<float>();
  const float* beta = norm_bias ? norm_bias->data<float>() : nullptr;
  double total = 0.0;
  for (int64_t c = 0; c < k; ++c) {
    const float a = std::fabs(gamma[c]) + (beta ? std::fabs(beta[c]) : 0.f);
    // A NaN magnitude (a corrupt norm) fails the comparison and takes the floor too.
    const float a_floored = a > kFloor ? a : kFloor;
    out[c] = std::sqrt(a_floored / std::max(w_max[c], kFloor));
    total += out[c];
  }
  const auto mean = static_cast<float>(total / static_cast<double>(k));
  for (int64_t c = 0; c < k; ++c) out[c] /= mean;
  return s;
}

Int8Weight quantize_weight_int8(const Tensor& w, bool pack, const Tensor* input_scale,
                                const Tensor* input_mean, bool rotate) {
  check_float_weight("quantize_weight_int8", w);
  check_rank("quantize_weight_int8", "w", w, 2);
  const int64_t n = w.dim(0), k = w.dim(1);
  if (input_scale) {
    check_cpu_f32("quantize_weight_int8", {input_scale});
    if (input_scale->numel() != k)
      throw InvalidInputError("quantize_weight_int8: input_scale " + shape_to_string(input_scale->shape()) +
                              " does not fit " + std::to_string(k) + " input features");
  }
  if (input_mean) {
    check_cpu_f32("quantize_weight_int8", {input_mean});
    if (input_mean->numel() != k)
      throw InvalidInputError("quantize_weight_int8: input_mean " + shape_to_string(input_mean->shape()) +
                              " does not fit " + std::to_string(k) + " input features");
  }
  Int8Weight out;
  out.q = Tensor(DType::I8, {n, k});
  out.scale = Tensor(DType::F32, {n});
  out.row_sum = Tensor(DType::I32, {n});
  out.out_features = n;
  out.in_features = k;
  out.rotation_block = rotate ? hadamard_block(k) : 1;
  const int64_t block = out.rotation_block;
  const float* col = input_scale ? input_scale->data<float>() : nullptr;
  if (col) {
    out.input_scale_inverse = Tensor(DType::F32, {k});
    for (int64_t c = 0; c < k; ++c) out.input_scale_inverse.data<float>()[c] = 1.f / col[c];
  }
  // The expected input as the quantized row meets it: mean / input_scale, rotated.
  std::vector<float> mean;
  if (input_mean) {
    mean.assign(input_mean->data<float>(), input_mean->data<float>() + k);
    if (col)
      for (int64_t c = 0; c < k; ++c) mean[c] *= out.input_scale_inverse.data<float>()[c];
    hadamard_rows(mean.data(), 1, k, block);
    out.rounding_bias = Tensor(DType::F32, {n});
  }
  int8_t* q = out.q.data<int8_t>();
  float* scale = out.scale.data<float>();
  int32_t* sum = out.row_sum.data<int32_t>();
  const Int8Codes codes = int8_codes();
  out.activation_max = codes.activation;
  const auto top = static_cast<float>(codes.weight);
  for (int64_t chunk = 0; chunk < n; chunk += kReleaseChunkRows) {
    const int64_t end = std::min(n, chunk + kReleaseChunkRows);
#pragma omp parallel
    {
      // A row times the input scales, rotated; a half-precision row widened.
      std::vector<float> scaled(col || block > 1 ? static_cast<size_t>(k) : 0);
      std::vector<float> widened(w.dtype() != DType::F32 ? static_cast<size_t>(k) : 0);
#pragma omp for schedule(static)
      for (int64_t r = chunk; r < end; ++r) {
        const float* row = weight_row_f32(w, r, widened.data());
        if (!scaled.empty()) {
          for (int64_t c = 0; c < k; ++c) scaled[c] = col ? row[c] * col[c] : row[c];
          hadamard_rows(scaled.data(), 1, k, block);
          row = scaled.data();
        }
        float amax = 0.f;
        // Vectorized: as a chain of scalar maxima this loop was 29% of the int8 quantizer's time.
#pragma omp simd reduction(max : amax)
        for (int64_t c = 0; c < k; ++c) amax = std::max(amax, std::fabs(row[c]));
        const float s = amax > 0.f ? amax / top : 1.f;
        const float inv = 1.f / s;
        int32_t total = 0;
#pragma omp simd reduction(+ : total)
        for (int64_t c = 0; c < k; ++c) {
          const float v = std::nearbyint(row[c] * inv);
          const int8_t qv = static_cast<int8_t>(std::clamp(v, -top, top));
          q[r * k + c] = qv;
          total += qv;
        }
        scale[r] = s;
        sum[r] = total;
        if (!mean.empty()) {  // Σ (s q - row) · mean, all three as the product meets them
          float error = 0.f;
          const int8_t* qr = q + r * k;
#pragma omp simd reduction(+ : error)
          for (int64_t c = 0; c < k; ++c) error += (s * static_cast<float>(qr[c]) - row[c]) * mean[c];
          out.rounding_bias.data<float>()[r] = error;
        }
      }
    }
    release_mapped_pages(weight_rows_data(w, chunk), weight_rows_bytes(w, chunk, end));
  }
  if (pack) {
    out.packed = pack_weight_s8(out.q);
    out.q = Tensor();
  }
  return out;
}

namespace {

// Checks y (M, N) = x (M, K) · wᵀ + bias for `what`, with x's rows and width given;
// y F32 or BF16.
void check_int8_product(const std::string& what, const Tensor& y, int64_t m, int64_t k, const Int8Weight& w,
                        const Tensor* bias) {
  if (y.device() != Device::CPU) throw Error(what + " has no CUDA implementation yet");
  if (y.dtype() != DType::F32 && y.dtype() != DType::BF16)
    throw InvalidInputError(what + ": y must be F32 or BF16, got " + dtype_name(y.dtype()));
  check_rank(what.c_str(), "y", y, 2);
  const int64_t n = w.out_features;
  if (w.in_features != k || y.dim(0) != m || y.dim(1) != n)
    throw InvalidInputError(what + ": shapes x (" + std::to_string(m) + ", " + std::to_string(k) + "), w (" +
                            std::to_string(n) + ", " + std::to_string(w.in_features) + "), y " +
                            shape_to_string(y.shape()) + " do not fit y = x · w^T");
  if (bias) {
    check_cpu_f32(what.c_str(), {bias});
    if (bias->numel() != n)
      throw InvalidInputError(what + ": bias " + shape_to_string(bias->shape()) + " does not fit " +
                              std::to_string(n) + " outputs");
  }
}

void check_input(const char* what, const Tensor& x) {
  check_cpu_f32(what, {&x});
  check_rank(what, "x", x, 2);
}

// The rows a product's quantized input and int32 sums need for m rows of w.
int64_t product_rows(const Int8Weight& w, int64_t m) {
  return w.packed.defined() ? cpu::packed_s8_rows(m) : m;
}

// Rows quantized for a product: x[r, k] (· smoothing) ≈ scale[r] · (q[r, k] - zero[r]), q
// holding product_rows() rows, the padding rows zero. In per-thread buffers that grow to
// the largest call and are then reused.
struct QuantizedRows {
  ScratchBuffer<uint8_t> q_buffer;
  ScratchBuffer<float> scale_buffer;
  ScratchBuffer<int32_t> zero_buffer;
  uint8_t* q = nullptr;
  float* scale = nullptr;
  int32_t* zero = nullptr;

  // Room for m rows of k values for w, the padding rows zeroed.
  void reserve(const Int8Weight& w, int64_t m, int64_t k) {
    const int64_t rows = product_rows(w, m);
    q = q_buffer.get(static_cast<size_t>(rows * k));
    std::fill(q + m * k, q + rows * k, uint8_t{0});
    scale = scale_buffer.get(static_cast<size_t>(m));
    zero = zero_buffer.get(static_cast<size_t>(m));
  }
  // How the sums of these rows and w become w's results.
  cpu::S8Dequantization dequantization(const Int8Weight& w, const Tensor* bias, Activation act) const {
    return {
        scale, zero, w.scale.data<float>(), w.row_sum.data<int32_t>(), bias ? bias->data<float>() : nullptr,
        act};
  }
};

// x quantized for w (its smoothing applied).
void quantize_input(QuantizedRows& in, const Tensor& x, const Int8Weight& w) {
  const int64_t m = x.dim(0), k = x.dim(1);
  in.reserve(w, m, k);
  cpu::quantize_rows_u8(in.q, in.scale, in.zero, x.data<float>(), m, k,
                        w.input_scale_inverse.defined() ? w.input_scale_inverse.data<float>() : nullptr,
                        w.rotation_block, w.activation_max);
}

// y (m rows, F32 or BF16) = in's rows times w, dequantized by dq.
void rescaled_product(Tensor& y, const QuantizedRows& in, const Int8Weight& w, int64_t m,
                      const cpu::S8Dequantization& dq) {
  const int64_t n = w.out_features, k = w.in_features;
  if (w.packed.defined()) {
    cpu::gemm_u8s8_dequantize_packed(y.raw_data(), in.q, w.packed.data.get(), m, n, k, dq,
                                     y.dtype() == DType::BF16);
    return;
  }
  thread_local ScratchBuffer<int32_t> acc_buffer;
  int32_t* acc = acc_buffer.get(static_cast<size_t>(m * n));
  cpu::gemm_u8s8s32(acc, in.q, w.q.data<int8_t>(), m, n, k);
  if (y.dtype() == DType::BF16) {
    cpu::dequantize_rows_bf16(y.data<uint16_t>(), acc, dq.row_scale, dq.row_zero, dq.col_scale, dq.col_sum,
                              dq.bias, m, n, dq.act);
    return;
  }
  cpu::dequantize_rows(y.data<float>(), acc, dq.row_scale, dq.row_zero, dq.col_scale, dq.col_sum, dq.bias, m,
                       n, dq.act);
}

}  // namespace

void matmul_nt_int8(Tensor& y, const Tensor& x, const Int8Weight& w, const Tensor* bias, Activation act) {
  check_input("matmul_nt_int8", x);
  check_int8_product("matmul_nt_int8", y, x.dim(0), x.dim(1), w, bias);
  const int64_t m = x.dim(0);
  if (m == 0) return;
  thread_local QuantizedRows in;
  quantize_input(in, x, w);
  // The bias and activation are applied as the sums are rescaled (with the panels, block
  // by block inside the product).
  rescaled_product(y, in, w, m, in.dequantization(w, bias, act));
}

void matmul_nt_int8_chain(Tensor& y, const Tensor& x, const Int8Weight& w1, const Tensor* b1, Activation act,
                          const Int8Weight& w2, const Tensor* b2) {
  check_input("matmul_nt_int8_chain", x);
  const int64_t m = x.dim(0), n1 = w1.out_features;
  if (n1 != w2.in_features)
    throw InvalidInputError("matmul_nt_int8_chain: the first product gives " + std::to_string(n1) +
                            " values a row, the second takes " + std::to_string(w2.in_features));
  if (b1) {
    check_cpu_f32("matmul_nt_int8_chain", {b1});
    if (b1->numel() != n1)
      throw InvalidInputError("matmul_nt_int8_chain: bias " + shape_to_string(b1->shape()) +
                              " does not fit " + std::to_string(n1) + " outputs");
  }
  if (w1.in_features != x.dim(1))
    throw InvalidInputError("matmul_nt_int8_chain: x " + shape_to_string(x.shape()) +
                            " does not fit a weight of " + std::to_string(w1.in_features) + " inputs");
  if (w2.input_scale_inverse.defined())
    throw InvalidInputError("matmul_nt_int8_chain: the second product's input is smoothed");
  check_int8_product("matmul_nt_int8_chain", y, m, n1, w2, b2);
  if (m == 0) return;
  thread_local QuantizedRows in, hidden;
  thread_local ScratchBuffer<int32_t> acc_buffer;
  quantize_input(in, x, w1);
  int32_t* acc = acc_buffer.get(static_cast<size_t>(product_rows(w1, m) * n1));
  if (w1.packed.defined())
    cpu::gemm_u8s8s32_packed(acc, in.q, w1.packed.data.get(), m, n1, w1.in_features);
  else
    cpu::gemm_u8s8s32(acc, in.q, w1.q.data<int8_t>(), m, n1, w1.in_features);
  hidden.reserve(w2, m, n1);
  const cpu::S8Dequantization dq = in.dequantization(w1, b1, act);
  cpu::dequantize_rows_u8(hidden.q, hidden.scale, hidden.zero, acc, dq.row_scale, dq.row_zero, dq.col_scale,
                          dq.col_sum, dq.bias, m, n1, act, w2.rotation_block, w2.activation_max);
  rescaled_product(y, hidden, w2, m, hidden.dequantization(w2, b2, Activation::None));
}

}  // namespace nle::ops
