// The int8 and bf16 matrix products of the fast compute types: the CPU kernels
// against the exact references, and the end-to-end error of a quantized product.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <utility>
#include <vector>

#include "core/buffer_pool.h"
#include "core/half.h"
#include "core/parallel.h"
#include "core/scratch_buffer.h"
#include "layers/sequence_groups.h"
#include "ops/activation.h"
#include "ops/bf16_gemm.h"
#include "ops/cpu/gemm_library.h"
#include "ops/cpu/gemv_bf16_blocked.h"
#include "ops/cpu/gemv_f32_blocked.h"
#include "ops/cpu/gemv_u8s8_blocked.h"
#include "ops/cpu/onednn_matmul.h"
#include "ops/gemm.h"
#include "ops/hadamard.h"
#include "ops/int8_gemm.h"
#include "ops/layer_norm.h"
#include "ops/packed_gemm.h"
#include "test_utils.h"

namespace nle::test {

namespace {
std::vector<float> exact_product(const std::vector<float>& x, const std::vector<float>& w, int64_t m,
                                 int64_t n, int64_t k) {
  std::vector<float> y(static_cast<size_t>(m * n));
  ops::reference::gemm_f32(y.data(), x.data(), w.data(), false, true, m, n, k, k, k, n, 1.f, 0.f);
  return y;
}

float max_abs(const std::vector<float>& v) {
  float m = 0.f;
  for (float x : v) m = std::max(m, std::fabs(x));
  return m;
}
}  // namespace

TEST(Int8GemmTest, QuantizeRowsMatchesReference) {
  const int64_t rows = 37, cols = 300;
  auto x = random_floats(static_cast<size_t>(rows * cols), 31, 4.f);
  for (int64_t c = 0; c < cols; ++c) x[static_cast<size_t>(5 * cols + c)] = 0.f;     // all zeros
  for (int64_t c = 0; c < cols; ++c) x[static_cast<size_t>(6 * cols + c)] = 1.f + c;  // all positive
  // Scale 1, zero point 0 and every value but the largest half-way between two codes: ties
  // go to even, in the vector body and in the tail alike.
  for (int64_t c = 0; c < cols; ++c)
    x[static_cast<size_t>(7 * cols + c)] = static_cast<float>(c % 255) + 0.5f;
  x[static_cast<size_t>(7 * cols)] = 255.f;
  std::vector<uint8_t> q(x.size()), q_ref(x.size());
  std::vector<float> s(rows), s_ref(rows);
  std::vector<int32_t> z(rows), z_ref(rows);
  ops::cpu::quantize_rows_u8(q.data(), s.data(), z.data(), x.data(), rows, cols);
  ops::reference::quantize_rows_u8(q_ref.data(), s_ref.data(), z_ref.data(), x.data(), rows, cols);
  EXPECT_EQ(q, q_ref);
  EXPECT_EQ(s, s_ref);
  EXPECT_EQ(z, z_ref);
  // Every value comes back within half a step, and 0 exactly.
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) {
      const size_t i = static_cast<size_t>(r * cols + c);
      const float back = s[static_cast<size_t>(r)] * static_cast<float>(q[i] - z[static_cast<size_t>(r)]);
      EXPECT_LE(std::fabs(back - x[i]), 0.5001f * s[static_cast<size_t>(r)]) << r << "," << c;
    }
  EXPECT_EQ(z[6], 0);
  EXPECT_EQ(s[7], 1.f);
  EXPECT_EQ(q[static_cast<size_t>(7 * cols + 1)], 2);     // 1.5
  EXPECT_EQ(q[static_cast<size_t>(7 * cols + 2)], 2);     // 2.5
  EXPECT_EQ(q[static_cast<size_t>(7 * cols + 299)], 44);  // 44.5, in the tail
}

// Codes 0..127, as CPUs without VNNI take them (ops/int8_gemm.h): each row's range over
// 127 steps, ties to even, the same codes as the reference in the vector body and the tail.
TEST(Int8GemmTest, QuantizeRowsToSevenBitsMatchesReference) {
  const int64_t rows = 13, cols = 203;
  auto x = random_floats(static_cast<size_t>(rows * cols), 35, 4.f);
  for (int64_t c = 0; c < cols; ++c)
    x[static_cast<size_t>(3 * cols + c)] = static_cast<float>(c % 127) + 0.5f;
  x[static_cast<size_t>(3 * cols)] = 127.f;  // scale 1, zero point 0
  std::vector<uint8_t> q(x.size()), q_ref(x.size());
  std::vector<float> s(rows), s_ref(rows);
  std::vector<int32_t> z(rows), z_ref(rows);
  ops::cpu::quantize_rows_u8(q.data(), s.data(), z.data(), x.data(), rows, cols, nullptr, 1, 127);
  ops::reference::quantize_rows_u8(q_ref.data(), s_ref.data(), z_ref.data(), x.data(), rows, cols, nullptr, 1,
                                   127);
  EXPECT_EQ(q, q_ref);
  EXPECT_EQ(s, s_ref);
  EXPECT_EQ(z, z_ref);
  EXPECT_EQ(*std::max_element(q.begin(), q.end()), 127);
  EXPECT_EQ(s[3], 1.f);
  EXPECT_EQ(q[static_cast<size_t>(3 * cols + 2)], 2);     // 2.5
  EXPECT_EQ(q[static_cast<size_t>(3 * cols + 202)], 76);  // 75.5, in the tail
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) {
      const size_t i = static_cast<size_t>(r * cols + c);
      const float back = s[static_cast<size_t>(r)] * static_cast<float>(q[i] - z[static_cast<size_t>(r)]);
      EXPECT_LE(std::fabs(back - x[i]), 0.5001f * s[static_cast<size_t>(r)]) << r << "," << c;
    }
}

TEST(Int8GemmTest, QuantizeRowsWithColumnScalesMatchesReference) {
  const int64_t rows = 9, cols = 77;
  const auto x = random_floats(static_cast<size_t>(rows * cols), 41, 3.f);
  std::vector<float> col(static_cast<size_t>(cols));
  for (int64_t c = 0; c < cols; ++c) col[static_cast<size_t>(c)] = 0.25f + 0.1f * static_cast<float>(c % 13);
  std::vector<uint8_t> q(x.size()), q_ref(x.size());
  std::vector<float> s(rows), s_ref(rows);
  std::vector<int32_t> z(rows), z_ref(rows);
  ops::cpu::quantize_rows_u8(q.data(), s.data(), z.data(), x.data(), rows, cols, col.data());
  ops::reference::quantize_rows_u8(q_ref.data(), s_ref.data(), z_ref.data(), x.data(), rows, cols,
                                   col.data());
  EXPECT_EQ(q, q_ref);
  EXPECT_EQ(s, s_ref);
  EXPECT_EQ(z, z_ref);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) {
      const size_t i = static_cast<size_t>(r * cols + c);
      const float back = s[static_cast<size_t>(r)] * static_cast<float>(q[i] - z[static_cast<size_t>(r)]);
      EXPECT_LE(std::fabs(back - x[i] * col[static_cast<size_t>(c)]), 0.5001f * s[static_cast<size_t>(r)]);
    }
}

TEST(Int8GemmTest, SmoothingScalesFollowTheNormAndTheWeight) {
  // Column 0: |γ|+|β| = 4, largest weight 1 -> sqrt(4); column 1: 1 and 4 -> sqrt(1/4);
  // column 2: all zero -> both floored, sqrt(1) = 1. Then divided by their mean.
  const Tensor w = tensor_from({1.f, -4.f, 0.f, -0.5f, 2.f, 0.f}, {2, 3});
  const Tensor gamma = tensor_from({-3.f, 1.f, 0.f}, {3});
  const Tensor beta = tensor_from({1.f, 0.f, 0.f}, {3});
  const Tensor s = ops::smoothing_scales(w, gamma, &beta);
  const float mean = (2.f + 0.5f + 1.f) / 3.f;
  EXPECT_FLOAT_EQ(s.data<float>()[0], 2.f / mean);
  EXPECT_FLOAT_EQ(s.data<float>()[1], 0.5f / mean);
  EXPECT_FLOAT_EQ(s.data<float>()[2], 1.f / mean);
  // An RMS norm has no bias.
  const Tensor s_rms = ops::smoothing_scales(w, gamma, nullptr);
  EXPECT_FLOAT_EQ(s_rms.data<float>()[0] / s_rms.data<float>()[1], std::sqrt(3.f) / 0.5f);
  // A corrupt norm (NaN) still gives finite scales.
  const Tensor nan_gamma = tensor_from({std::nanf(""), 1.f, 0.f}, {3});
  const Tensor s_nan = ops::smoothing_scales(w, nan_gamma, nullptr);
  for (int64_t c = 0; c < 3; ++c) EXPECT_TRUE(std::isfinite(s_nan.data<float>()[c])) << c;
  const Tensor wrong = tensor_from({1.f, 2.f}, {2});
  EXPECT_THROW(ops::smoothing_scales(w, wrong, nullptr), InvalidInputError);
  EXPECT_THROW(ops::quantize_weight_int8(w, false, &wrong), InvalidInputError);
}

TEST(Int8GemmTest, SmoothingCutsTheErrorOfOutlierChannels) {
  // A norm's output whose γ makes a few channels 30x larger than the rest (as trained
  // layer norms do): one scale per row leaves the small channels few levels. Smoothed by
  // that γ, the same product comes closer to the exact one (measured: root mean square
  // error 2x smaller with 7-bit weight codes, 2.8x with 8-bit ones), and the smoothed
  // weight still gives the product itself, not a rescaled one.
  const int64_t m = 64, n = 96, k = 384;
  auto x = random_floats(static_cast<size_t>(m * k), 42, 1.f);
  std::vector<float> gamma(static_cast<size_t>(k), 1.f);
  for (int64_t c = 0; c < k; c += 37) gamma[static_cast<size_t>(c)] = 30.f;
  for (int64_t r = 0; r < m; ++r)
    for (int64_t c = 0; c < k; ++c) x[static_cast<size_t>(r * k + c)] *= gamma[static_cast<size_t>(c)];
  const auto w = random_floats(static_cast<size_t>(n * k), 43, 0.1f);
  const Tensor xt = tensor_from(x, {m, k}), wt = tensor_from(w, {n, k}), g = tensor_from(gamma, {k});
  const auto expected = exact_product(x, w, m, n, k);
  auto error = [&](const ops::Int8Weight& q) {
    Tensor y(DType::F32, {m, n});
    ops::matmul_nt_int8(y, xt, q);
    return relative_rms_error(y, expected);
  };
  const Tensor s = ops::smoothing_scales(wt, g, nullptr);
  // Unrotated, to see the smoothing alone (hadamard_test.cc has the rotation).
  const double plain = error(ops::quantize_weight_int8(wt, false, nullptr, nullptr, false));
  const double smoothed = error(ops::quantize_weight_int8(wt, false, &s, nullptr, false));
  const double packed = error(ops::quantize_weight_int8(wt, true, &s, nullptr, false));
  const double rotated = error(ops::quantize_weight_int8(wt, true, &s));
  std::printf(
      "outlier channels, codes up to %d (inputs), %d (weights): relative RMS error plain %.5f, smoothed "
      "%.5f, "
      "smoothed and rotated %.5f\n",
      ops::int8_activation_max(), ops::int8_weight_max(), plain, smoothed, rotated);
  EXPECT_LT(smoothed, 0.6 * plain);
  EXPECT_EQ(packed, smoothed);
  EXPECT_LT(smoothed, 0.02);
  EXPECT_LT(rotated, smoothed);
}

// Given the input's expected value (a layer norm's bias, in the layers), quantization also
// gives the weight rounding's error on it, Σ_k (w_q - w)[n, k] · mean[k] with w_q the
// weight as the smoothed product applies it; subtracted from the bias it takes most of
// the systematic part of the product's error away on inputs around that mean.
TEST(Int8GemmTest, RoundingBiasCancelsTheWeightErrorOnTheMeanInput) {
  const int64_t m = 64, n = 40, k = 384;
  const auto w = random_floats(static_cast<size_t>(n * k), 71, 0.1f);
  auto mean = random_floats(static_cast<size_t>(k), 72, 1.f);
  std::vector<float> gamma(static_cast<size_t>(k), 1.f);
  for (int64_t c = 0; c < k; c += 29) gamma[static_cast<size_t>(c)] = 20.f;
  const Tensor wt = tensor_from(w, {n, k}), g = tensor_from(gamma, {k}), mean_t = tensor_from(mean, {k});
  const Tensor smoothing = ops::smoothing_scales(wt, g, &mean_t);
  const ops::Int8Weight q = ops::quantize_weight_int8(wt, false, &smoothing, &mean_t);
  ASSERT_TRUE(q.rounding_bias.defined());
  const int8_t* codes = q.q.data<int8_t>();
  const float* inv = q.input_scale_inverse.data<float>();
  std::vector<float> row(static_cast<size_t>(k));
  for (int64_t r = 0; r < n; ++r) {
    // The weight as the product applies it: codes times scale, rotated back (the
    // normalized rotation is its own inverse), times the inverse smoothing.
    for (int64_t c = 0; c < k; ++c) row[static_cast<size_t>(c)] = q.scale.data<float>()[r] * codes[r * k + c];
    ops::reference::hadamard_rows(row.data(), 1, k, q.rotation_block);
    double expected = 0.0, magnitude = 0.0;
    for (int64_t c = 0; c < k; ++c) {
      const double wq = double{row[static_cast<size_t>(c)]} * inv[c];
      expected += (wq - w[static_cast<size_t>(r * k + c)]) * mean[static_cast<size_t>(c)];
      magnitude += std::fabs(wq * mean[static_cast<size_t>(c)]);
    }
    EXPECT_NEAR(q.rounding_bias.data<float>()[r], expected, 1e-6 * magnitude) << "row " << r;
  }
  // Inputs around the mean: the column means of the product's error, with and without
  // the correction.
  auto x = random_floats(static_cast<size_t>(m * k), 73, 0.05f);
  for (int64_t i = 0; i < m; ++i)
    for (int64_t c = 0; c < k; ++c) x[static_cast<size_t>(i * k + c)] += mean[static_cast<size_t>(c)];
  const auto exact = exact_product(x, w, m, n, k);
  Tensor correction(DType::F32, {n});
  for (int64_t r = 0; r < n; ++r) correction.data<float>()[r] = -q.rounding_bias.data<float>()[r];
  auto systematic_error = [&](const Tensor* bias) {
    Tensor y(DType::F32, {m, n});
    ops::matmul_nt_int8(y, tensor_from(x, {m, k}), q, bias);
    double total = 0.0;
    for (int64_t r = 0; r < n; ++r) {
      double column = 0.0;
      for (int64_t i = 0; i < m; ++i)
        column += double{y.data<float>()[i * n + r]} - exact[static_cast<size_t>(i * n + r)];
      total += std::fabs(column / static_cast<double>(m));
    }
    return total / static_cast<double>(n);
  };
  const double plain = systematic_error(nullptr), corrected = systematic_error(&correction);
  std::printf("mean column error of the product: %.3g plain, %.3g with the rounding bias subtracted\n", plain,
              corrected);
  EXPECT_LT(corrected, 0.5 * plain);
  const Tensor wrong = tensor_from(random_floats(5, 1), {5});
  EXPECT_THROW(ops::quantize_weight_int8(wt, false, nullptr, &wrong), InvalidInputError);
  EXPECT_FALSE(ops::quantize_weight_int8(wt, true, &smoothing).rounding_bias.defined());
}

TEST(Int8GemmTest, IntegerProductIsExact) {
  // Extreme values in every pair, up to the largest codes the products on this CPU take
  // (activations 255 with VNNI, else 127): a product that saturated 16-bit sums would differ.
  const int32_t w_max = ops::int8_weight_max(), a_max = ops::int8_activation_max();
  ASSERT_EQ(w_max, 127);
  ASSERT_TRUE(a_max == 255 || a_max == 127) << a_max;
  for (int64_t k : {1, 4, 63, 64, 384, 1536}) {
    const int64_t m = 19, n = 45;
    std::vector<uint8_t> a(static_cast<size_t>(m * k));
    std::vector<int8_t> b(static_cast<size_t>(n * k));
    for (size_t i = 0; i < a.size(); ++i)
      a[i] = static_cast<uint8_t>(i % 7 == 0 ? 3 : a_max - static_cast<int32_t>(i % 5));
    for (size_t i = 0; i < b.size(); ++i)
      b[i] = static_cast<int8_t>(i % 3 == 0 ? -w_max : w_max - static_cast<int32_t>(i % 4));
    std::vector<int32_t> c(static_cast<size_t>(m * n)), expected(c.size());
    ops::cpu::gemm_u8s8s32(c.data(), a.data(), b.data(), m, n, k);
    ops::reference::gemm_u8s8s32(expected.data(), a.data(), b.data(), m, n, k);
    EXPECT_EQ(c, expected) << "k " << k;
  }
}

TEST(Int8GemmTest, QuantizedProductIsClose) {
  const int64_t m = 50, n = 96, k = 384;
  const auto x = random_floats(static_cast<size_t>(m * k), 32, 2.f);
  auto w = random_floats(static_cast<size_t>(n * k), 33, 0.1f);
  for (int64_t c = 0; c < k; ++c) w[static_cast<size_t>(7 * k + c)] = 0.f;  // a zero channel
  const Tensor xt = tensor_from(x, {m, k}), wt = tensor_from(w, {n, k});
  const ops::Int8Weight q = ops::quantize_weight_int8(wt);
  int32_t largest_code = 0;
  for (int64_t i = 0; i < n * k; ++i)
    largest_code = std::max(largest_code, std::abs(int32_t{q.q.data<int8_t>()[i]}));
  EXPECT_EQ(largest_code, ops::int8_weight_max());  // each channel's largest weight gets the top code
  Tensor y(DType::F32, {m, n});
  ops::matmul_nt_int8(y, xt, q);
  const std::vector<float> got(y.data<float>(), y.data<float>() + m * n);
  const auto expected = exact_product(x, w, m, n, k);
  // Two 8-bit roundings of random data: about 1% of the output's range.
  EXPECT_LT(max_abs_diff(got, expected), 0.02f * max_abs(expected));
  for (int64_t r = 0; r < m; ++r) EXPECT_EQ(got[static_cast<size_t>(r * n + 7)], 0.f);
}

TEST(Int8GemmTest, ShapeMismatchIsAnError) {
  const Tensor w = tensor_from(random_floats(12, 34), {3, 4});
  const ops::Int8Weight q = ops::quantize_weight_int8(w);
  Tensor x(DType::F32, {2, 5}), y(DType::F32, {2, 3});
  EXPECT_THROW(ops::matmul_nt_int8(y, x, q), InvalidInputError);
}

TEST(Bf16GemmTest, RoundsToNearestEven) {
  const std::vector<float> in = {1.f, 1.00390625f /* halfway, even below */, 1.01171875f /* halfway, odd below */,
                                 -2.5f, 0.f, 3.0e38f};
  std::vector<uint16_t> out(in.size());
  ops::cpu::float_to_bf16(out.data(), in.data(), static_cast<int64_t>(in.size()));
  EXPECT_EQ(bf16_to_float(out[0]), 1.f);
  EXPECT_EQ(bf16_to_float(out[1]), 1.f);
  EXPECT_EQ(bf16_to_float(out[2]), 1.015625f);
  EXPECT_EQ(bf16_to_float(out[3]), -2.5f);
  EXPECT_EQ(bf16_to_float(out[4]), 0.f);
  EXPECT_NEAR(bf16_to_float(out[5]), 3.0e38f, 3.0e38f / 128);
}

// Every rounding path (the CPU's vcvtneps2bf16 where it has one, which flushes
// denormals, falls back for vectors holding one) gives float_to_bf16_bits' bits: ties,
// denormals, NaN (quieted), infinities and the largest finite floats, in every lane of a
// 16-lane vector and in a masked last step; and layer norm's rounded output is its float
// output rounded the same way.
TEST(Bf16GemmTest, RoundingMatchesScalarBitsIncludingDenormalsAndNaN) {
  const float denormal = std::ldexp(1.f, -140), nan = std::nanf("");
  const float max_finite = 3.4028235e38f, inf = INFINITY;
  const std::vector<float> special = {
      1.00390625f, 1.01171875f, -1.00390625f, denormal, -denormal,  std::ldexp(1.f, -126),
      nan,         -nan,        inf,          -inf,     max_finite, -max_finite,
      0.f,         -0.f,        65504.f,      1e-30f};
  auto x = random_floats(16 * 40 + 7, 91, 3.f);
  for (size_t i = 0; i < special.size(); ++i) {
    x[i] = special[i];                      // all in the first vector
    x[16 * (i + 1) + i % 16] = special[i];  // one to a vector, each lane in turn
  }
  x[x.size() - 2] = denormal;  // in the masked last step
  std::vector<uint16_t> got(x.size());
  ops::cpu::float_to_bf16(got.data(), x.data(), static_cast<int64_t>(x.size()));
  for (size_t i = 0; i < x.size(); ++i) EXPECT_EQ(got[i], float_to_bf16_bits(x[i])) << "value " << i;

  const int64_t rows = 5, cols = 384 + 16 + 3;
  auto rows_in = random_floats(static_cast<size_t>(rows * cols), 92, 2.f);
  auto gamma = random_floats(static_cast<size_t>(cols), 93, 1.f);
  auto beta = random_floats(static_cast<size_t>(cols), 94, 0.5f);
  for (int64_t c = 0; c < cols; c += 7) {  // denormal outputs
    gamma[static_cast<size_t>(c)] = std::ldexp(1.f, -135);
    beta[static_cast<size_t>(c)] = 0.f;
  }
  std::vector<float> y(rows_in.size());
  std::vector<uint16_t> y_bf16(rows_in.size());
  ops::cpu::layer_norm_f32(y.data(), rows_in.data(), nullptr, gamma.data(), beta.data(), rows, cols, 1e-12f,
                           y_bf16.data());
  for (size_t i = 0; i < y.size(); ++i) EXPECT_EQ(y_bf16[i], float_to_bf16_bits(y[i])) << "norm value " << i;
}

TEST(Bf16GemmTest, MatchesReference) {
  const int64_t m = 33, n = 70, k = 384;
  const auto x = random_floats(static_cast<size_t>(m * k), 35, 2.f);
  const auto w = random_floats(static_cast<size_t>(n * k), 36, 0.1f);
  const Tensor xt = tensor_from(x, {m, k});
  const Tensor wb = ops::to_bf16(tensor_from(w, {n, k}));
  Tensor y(DType::F32, {m, n});
  ops::matmul_nt_bf16(y, xt, wb);
  std::vector<uint16_t> xb(x.size());
  ops::cpu::float_to_bf16(xb.data(), x.data(), static_cast<int64_t>(x.size()));
  std::vector<float> expected(static_cast<size_t>(m * n));
  ops::reference::gemm_bf16(expected.data(), xb.data(), wb.data<uint16_t>(), m, n, k);
  const std::vector<float> got(y.data<float>(), y.data<float>() + m * n);
  EXPECT_LT(max_abs_diff(got, expected), 1e-4f * max_abs(expected));
  // ... and close to the float32 product: bf16 keeps 8 bits of mantissa.
  EXPECT_LT(max_abs_diff(got, exact_product(x, w, m, n, k)), 0.02f * max_abs(expected));
}

TEST(PackedGemmTest, FloatMatchesReferenceForAnyRowCount) {
  const int64_t n = 70, k = 96;
  const auto w = random_floats(static_cast<size_t>(n * k), 37, 0.3f);
  const ops::PackedWeight packed = ops::pack_weight_f32(tensor_from(w, {n, k}));
  // n = 70 leaves a partial panel of columns (ops/cpu/panel_gemm_f32.h); 5, 6, 7, 13 and
  // 32 rows passes of unequal sizes, 97 and 193 row blocks of them (96 rows at most).
  for (int64_t m : {1, 5, 6, 7, 13, 32, 64, 97, 193, 301}) {
    const auto x = random_floats(static_cast<size_t>(m * k), 38 + static_cast<uint32_t>(m));
    Tensor y(DType::F32, {m, n});
    ops::matmul_nt_packed(y, tensor_from(x, {m, k}), packed);
    const std::vector<float> got(y.data<float>(), y.data<float>() + m * n);
    EXPECT_LT(max_abs_diff(got, exact_product(x, w, m, n, k)), 1e-4f) << "m " << m;
  }
}

// A float32 weight past 4 MB is reordered for oneDNN a part of its rows at a time (ops/cpu/
// onednn_matmul.cc): parts of 3,520 and 10,496 rows here, the last a partial block of
// columns, K a whole number of blocks and not (300 and 100 inputs). Products from the
// blocked kernel (few rows) and from the primitive match the reference.
TEST(PackedGemmTest, FloatWeightReorderedInPartsMatchesReference) {
  for (const auto& [n, k] : {std::pair<int64_t, int64_t>{8003, 300}, {12001, 100}}) {
    const auto w = random_floats(static_cast<size_t>(n * k), 61, 0.3f);
    const ops::PackedWeight packed = ops::pack_weight_f32(tensor_from(w, {n, k}));
    for (int64_t m : {1, 3, 17, 64, 130}) {
      const auto x = random_floats(static_cast<size_t>(m * k), 62 + static_cast<uint32_t>(m));
      Tensor y(DType::F32, {m, n});
      ops::matmul_nt_packed(y, tensor_from(x, {m, k}), packed);
      const std::vector<float> got(y.data<float>(), y.data<float>() + m * n);
      EXPECT_LT(max_abs_diff(got, exact_product(x, w, m, n, k)), 1e-4f)
          << "n " << n << " k " << k << " m " << m;
    }
  }
}

// Products whose a and c hold exactly m rows read and write only those rows, for row
// counts past oneDNN's chunk of 1,024 rows and between its steps of 8 (ops/cpu/
// onednn_matmul.h): exact (up to 64 rows), split in two products (77 and 1,101 rows of the
// 24 x 40 weight, and bf16 ones of the 2,048 x 1,800 weight) and copied into padded
// buffers (float32 products of 69 and 75 rows of that weight). The float32 and bf16
// products write m rows of c (the 16 rows after them keep their NaN guard) and match the
// reference. a is a vector of exactly m rows, so that a read past it is an error under
// AddressSanitizer.
TEST(PackedGemmTest, PackedProductsTouchOnlyTheirRows) {
  struct Case {
    int64_t n, k;
    std::vector<int64_t> rows;
  };
  const int64_t guard = 16;
  for (const Case& shape : {Case{24, 40, {9, 13, 77, 1024, 1031, 1101, 2053}}, Case{2048, 1800, {69, 75}}}) {
    const int64_t n = shape.n, k = shape.k;
    const auto w = random_floats(static_cast<size_t>(n * k), 51, 0.3f);
    const Tensor w_tensor = tensor_from(w, {n, k});
    const ops::PackedWeight packed = ops::pack_weight_f32(w_tensor);
    const bool with_bf16 = ops::packs_bf16_weights();
    const Tensor wb = ops::to_bf16(w_tensor);
    const ops::PackedWeight packed_bf16 = with_bf16 ? ops::pack_weight_bf16(wb) : ops::PackedWeight{};
    for (int64_t m : shape.rows) {
      const auto x = random_floats(static_cast<size_t>(m * k), 52 + static_cast<uint32_t>(m));
      const std::vector<float> expected = exact_product(x, w, m, n, k);
      std::vector<float> c(static_cast<size_t>((m + guard) * n), std::nanf(""));
      ops::cpu::gemm_f32_packed(c.data(), x.data(), packed.data.get(), m, n, k);
      EXPECT_LT(max_abs_diff(std::vector<float>(c.begin(), c.begin() + m * n), expected),
                1e-4f * max_abs(expected))
          << "n " << n << " m " << m;
      for (int64_t i = m * n; i < (m + guard) * n; ++i)
        ASSERT_TRUE(std::isnan(c[static_cast<size_t>(i)]))
            << "float32, n " << n << " m " << m << ": wrote row " << i / n;
      if (!with_bf16) continue;
      std::vector<uint16_t> xb(x.size());
      ops::cpu::float_to_bf16(xb.data(), x.data(), static_cast<int64_t>(x.size()));
      std::vector<float> expected_bf16(static_cast<size_t>(m * n));
      ops::reference::gemm_bf16(expected_bf16.data(), xb.data(), wb.data<uint16_t>(), m, n, k);
      std::fill(c.begin(), c.end(), std::nanf(""));
      ops::cpu::gemm_bf16_packed(c.data(), xb.data(), packed_bf16.data.get(), m, n, k, /*a_padded=*/false);
      EXPECT_LT(max_abs_diff(std::vector<float>(c.begin(), c.begin() + m * n), expected_bf16),
                1e-4f * max_abs(expected_bf16))
          << "bf16, n " << n << " m " << m;
      for (int64_t i = m * n; i < (m + guard) * n; ++i)
        ASSERT_TRUE(std::isnan(c[static_cast<size_t>(i)]))
            << "bf16, n " << n << " m " << m << ": wrote row " << i / n;
    }
  }
}

// The bias and activation of a packed float32 product, as fused by each way of packing.
// The bias and activation are applied inside the product (with panels, by the kernel to
// each block it stores: ops/cpu/panel_gemm_f32.cc), with and without a bias, a partial
// panel (n = 37) and rows past a block.
TEST(PackedGemmTest, FloatPackedEpilogueMatchesTheReference) {
  const int64_t n = 37, k = 50;
  const auto w = random_floats(static_cast<size_t>(n * k), 9, 0.3f);
  const ops::PackedWeight packed = ops::pack_weight_f32(tensor_from(w, {n, k}));
  const auto bias_values = random_floats(static_cast<size_t>(n), 10);
  const Tensor bias = tensor_from(bias_values, {n});
  // oneDNN without a float32 layout of its own: the panels of ops/cpu/panel_gemm_f32.h.
  const bool panels = ops::cpu::gemm_library() == ops::cpu::GemmLibrary::OneDnn &&
                      !ops::cpu::onednn::packs_weights(ops::cpu::onednn::MatmulType::F32F32F32);
  for (ops::Activation act : {ops::Activation::None, ops::Activation::GeluErf, ops::Activation::GeluTanh,
                              ops::Activation::Relu, ops::Activation::Silu, ops::Activation::Tanh}) {
    for (const bool with_bias : {true, false}) {
      for (int64_t m : {3, 16, 40, 200}) {  // 200: past a block of rows (panel_gemm_f32)
        const auto x = random_floats(static_cast<size_t>(m * k), 11 + static_cast<uint32_t>(m));
        Tensor y(DType::F32, {m, n});
        ops::matmul_nt_packed(y, tensor_from(x, {m, k}), packed, with_bias ? &bias : nullptr, act);
        auto expected = exact_product(x, w, m, n, k);
        ops::reference::bias_activation_f32(expected.data(), with_bias ? bias_values.data() : nullptr, m, n,
                                            act);
        const std::vector<float> got(y.data<float>(), y.data<float>() + m * n);
        EXPECT_LT(max_abs_diff(got, expected), 1e-4f)
            << "m " << m << " " << ops::activation_name(act) << (with_bias ? " with bias" : " no bias");
        if (panels) {
          // The activation the kernel applies in registers (GELU by gelu_erf8) gives the
          // bits of activate_f32 on the stored sums, as every other path computes it.
          Tensor plain(DType::F32, {m, n});
          ops::matmul_nt_packed(plain, tensor_from(x, {m, k}), packed, with_bias ? &bias : nullptr,
                                ops::Activation::None);
          ops::cpu::activate_f32(plain.data<float>(), m * n, act);
          EXPECT_EQ(0, std::memcmp(plain.data<float>(), y.data<float>(), y.nbytes()))
              << "m " << m << " " << ops::activation_name(act) << (with_bias ? " with bias" : " no bias");
        }
      }
    }
  }
}

// Products of 1 to kGemvMaxRows rows on a float32 weight in oneDNN's blocked layout read it
// directly (ops/cpu/gemv_f32_blocked.h): through matmul_nt_packed, shapes whose columns
// fill no whole block of 64 and whose depth is no multiple of 16, with and without a bias
// and activation, against the reference, writing only their rows; and every weight of
// these shapes takes that path where oneDNN packs float32 weights and the CPU runs it
// (a oneDNN whose layout changed would show here, not as a slower decoding step).
TEST(PackedGemmTest, FewRowsReadTheBlockedWeightDirectly) {
  const bool onednn_layout = ops::cpu::gemm_library() == ops::cpu::GemmLibrary::OneDnn &&
                             ops::cpu::onednn::packs_weights(ops::cpu::onednn::MatmulType::F32F32F32);
  const int64_t guard = 3;
  for (const auto& [n, k] : std::vector<std::pair<int64_t, int64_t>>{
           {37, 50}, {64, 16}, {130, 33}, {768, 768}, {1000, 7}, {50, 3072}}) {
    const auto w = random_floats(static_cast<size_t>(n * k), 61, 0.3f);
    const ops::PackedWeight packed = ops::pack_weight_f32(tensor_from(w, {n, k}));
    if (onednn_layout) {
      EXPECT_EQ(ops::cpu::onednn::few_rows_read_directly(packed.data.get()),
                ops::cpu::gemv_f32_blocked_available())
          << "n " << n << " k " << k;
    }
    const auto bias_values = random_floats(static_cast<size_t>(n), 62);
    const Tensor bias = tensor_from(bias_values, {n});
    for (const int64_t m :
         {int64_t{1}, int64_t{2}, int64_t{3}, int64_t{4}, int64_t{5}, int64_t{7}, int64_t{13},
          ops::cpu::kGemvMaxRows - 1, ops::cpu::kGemvMaxRows, ops::cpu::kGemvMaxRows + 1}) {
      for (const ops::Activation act : {ops::Activation::None, ops::Activation::GeluErf}) {
        const bool with_bias = act != ops::Activation::None;
        const auto x = random_floats(static_cast<size_t>(m * k), 63 + static_cast<uint32_t>(m));
        std::vector<float> expected = exact_product(x, w, m, n, k);
        ops::reference::bias_activation_f32(expected.data(), with_bias ? bias_values.data() : nullptr, m, n,
                                            act);
        Tensor y(DType::F32, {m + guard, n});
        std::fill(y.data<float>(), y.data<float>() + (m + guard) * n, std::nanf(""));
        Tensor y_rows = Tensor::view(DType::F32, {m, n}, y.data<float>(), nullptr);
        ops::matmul_nt_packed(y_rows, tensor_from(x, {m, k}), packed, with_bias ? &bias : nullptr, act);
        const std::vector<float> got(y.data<float>(), y.data<float>() + m * n);
        EXPECT_LT(max_abs_diff(got, expected), 1e-4f * std::max(1.f, max_abs(expected)))
            << "n " << n << " k " << k << " m " << m << " " << ops::activation_name(act);
        for (int64_t i = m * n; i < (m + guard) * n; ++i)
          ASSERT_TRUE(std::isnan(y.data<float>()[i]))
              << "n " << n << " k " << k << " m " << m << ": wrote row " << i / n;
      }
    }
  }
}

// The kernel on a layout made here: a block stride longer than the depth and NaN in every
// float it must not use (the depth's padding, the last block's columns past n), which
// would reach the results if it read them as values; rows in registers (up to 4) and in
// chunks, depths of one chunk and of three. Where the CPU or build has no such
// kernel (no AVX-512, the NLE_AVX2_ONLY build), calling it is an error.
TEST(PackedGemmTest, BlockedGemvReadsOnlyTheWeightsFloats) {
  for (const auto& [k, padded_k] : std::vector<std::pair<int64_t, int64_t>>{{21, 48}, {150, 176}}) {
    const int64_t n = 150, block = ops::cpu::kGemvColumnBlock;
    const int64_t blocks = (n + block - 1) / block, stride = padded_k * block;
    const auto w = random_floats(static_cast<size_t>(n * k), 71, 0.3f);
    std::vector<float> layout(static_cast<size_t>(blocks * stride), std::nanf(""));
    for (int64_t j = 0; j < n; ++j)
      for (int64_t i = 0; i < k; ++i)
        layout[static_cast<size_t>(j / block * stride + i * block + j % block)] = w[j * k + i];
    for (const int64_t m : {int64_t{1}, int64_t{4}, int64_t{5}, int64_t{9}, ops::cpu::kGemvMaxRows}) {
      const auto x = random_floats(static_cast<size_t>(m * k), 72 + static_cast<uint32_t>(m));
      std::vector<float> got(static_cast<size_t>(m * n));
      if (!ops::cpu::gemv_f32_blocked_available()) {
        EXPECT_THROW(ops::cpu::gemv_f32_blocked(got.data(), x.data(), layout.data(), m, n, k, stride, nullptr,
                                                ops::Activation::None),
                     Error);
        continue;
      }
      ops::cpu::gemv_f32_blocked(got.data(), x.data(), layout.data(), m, n, k, stride, nullptr,
                                 ops::Activation::None);
      EXPECT_LT(max_abs_diff(got, exact_product(x, w, m, n, k)), 2e-5f) << "k " << k << " m " << m;
    }
  }
}

// The packed product dequantizes its sums inside the product (with panels, block by block:
// ops/cpu/panel_gemm_u8s8.h), the plain one after it: the same sums and the same
// arithmetic, so the same bits. Shapes: one panel and part of one, chunks of panels split
// between the threads, k not a multiple of 4; rows in one block, past a block, and in a
// 256-row chunk plus a padded one (oneDNN).
TEST(PackedGemmTest, Int8PackedEqualsUnpacked) {
  for (const auto& [n, k] : std::vector<std::pair<int64_t, int64_t>>{{45, 200}, {300, 30}, {1000, 64}}) {
    const Tensor w = tensor_from(random_floats(static_cast<size_t>(n * k), 39, 0.2f), {n, k});
    const ops::Int8Weight plain = ops::quantize_weight_int8(w, /*pack=*/false);
    const ops::Int8Weight packed = ops::quantize_weight_int8(w, /*pack=*/true);
    EXPECT_FALSE(packed.q.defined());
    const Tensor bias = tensor_from(random_floats(static_cast<size_t>(n), 40), {n});
    for (const ops::Activation act : {ops::Activation::None, ops::Activation::GeluErf}) {
      for (int64_t m : {1, 17, 96, 130, 300}) {
        const Tensor x = tensor_from(random_floats(static_cast<size_t>(m * k), 41, 3.f), {m, k});
        Tensor a(DType::F32, {m, n}), b(DType::F32, {m, n});
        ops::matmul_nt_int8(a, x, plain, &bias, act);
        ops::matmul_nt_int8(b, x, packed, &bias, act);
        EXPECT_EQ(0, std::memcmp(a.data<float>(), b.data<float>(), a.nbytes()))
            << "m " << m << " n " << n << " k " << k << " " << ops::activation_name(act);
        ops::matmul_nt_int8(b, x, packed, nullptr, act);  // without a bias
        ops::matmul_nt_int8(a, x, plain, nullptr, act);
        EXPECT_EQ(0, std::memcmp(a.data<float>(), b.data<float>(), a.nbytes())) << "no bias, m " << m;
      }
    }
  }
}

// An int8 product's bf16 results (the input of a bf16 product: int8-mixed's feed-forward)
// are its float32 results rounded as float_to_bf16 rounds them, bit for bit, packed or not,
// with and without a bias and an activation, at row counts under and over the threshold
// where the rescaling runs in parallel.
TEST(PackedGemmTest, Int8Bf16ResultsAreTheFloatResultsRounded) {
  const int64_t n = 300, k = 70;
  const Tensor w = tensor_from(random_floats(static_cast<size_t>(n * k), 42, 0.2f), {n, k});
  const Tensor bias = tensor_from(random_floats(static_cast<size_t>(n), 43), {n});
  for (const bool pack : {false, true}) {
    const ops::Int8Weight q = ops::quantize_weight_int8(w, pack);
    for (const ops::Activation act : {ops::Activation::None, ops::Activation::GeluErf}) {
      for (int64_t m : {1, 17, 130}) {
        const Tensor x = tensor_from(random_floats(static_cast<size_t>(m * k), 44, 3.f), {m, k});
        for (const Tensor* b : {&bias, static_cast<const Tensor*>(nullptr)}) {
          Tensor f32(DType::F32, {m, n}), bf16(DType::BF16, {m, n});
          ops::matmul_nt_int8(f32, x, q, b, act);
          ops::matmul_nt_int8(bf16, x, q, b, act);
          const Tensor expected = ops::to_bf16(f32);
          EXPECT_EQ(0, std::memcmp(expected.raw_data(), bf16.raw_data(), bf16.nbytes()))
              << (pack ? "packed" : "plain") << " m " << m << " " << ops::activation_name(act)
              << (b ? "" : " no bias");
        }
      }
    }
  }
  Tensor y(DType::I32, {2, n});  // neither F32 nor BF16
  EXPECT_THROW(
      ops::matmul_nt_int8(y, tensor_from(random_floats(2 * k, 1), {2, k}), ops::quantize_weight_int8(w)),
      InvalidInputError);
}

// Two int8 products in a row (a feed-forward block) with the first's results handed to
// the second quantized, never float32 in memory: the same bits as the two products through
// a float32 hidden tensor, packed or not, with and without biases, with GELU or nothing
// between them (200 hidden values: the fused rescale-and-quantize pass's steps of 32 and a
// partial one), the second's results float32 or bf16; row counts of the few-row kernel,
// the primitive's blocks, and past a 1,024-row chunk.
TEST(PackedGemmTest, Int8ChainEqualsTheTwoProducts) {
  const int64_t k = 72, hidden = 200, n = 48;
  const Tensor w1 = tensor_from(random_floats(static_cast<size_t>(hidden * k), 45, 0.2f), {hidden, k});
  const Tensor w2 = tensor_from(random_floats(static_cast<size_t>(n * hidden), 46, 0.2f), {n, hidden});
  const Tensor b1 = tensor_from(random_floats(static_cast<size_t>(hidden), 47), {hidden});
  const Tensor b2 = tensor_from(random_floats(static_cast<size_t>(n), 48), {n});
  for (const bool pack : {false, true}) {
    const ops::Int8Weight q1 = ops::quantize_weight_int8(w1, pack), q2 = ops::quantize_weight_int8(w2, pack);
    for (int64_t m : {1, 3, 5, 17, 130, 1100}) {
      const Tensor x = tensor_from(random_floats(static_cast<size_t>(m * k), 49, 3.f), {m, k});
      for (const bool biases : {true, false}) {
        const Tensor* first_bias = biases ? &b1 : nullptr;
        const Tensor* second_bias = biases ? &b2 : nullptr;
        for (const ops::Activation act : {ops::Activation::GeluErf, ops::Activation::None}) {
          Tensor h(DType::F32, {m, hidden});
          ops::matmul_nt_int8(h, x, q1, first_bias, act);
          for (const DType out : {DType::F32, DType::BF16}) {
            Tensor expected(out, {m, n}), got(out, {m, n});
            ops::matmul_nt_int8(expected, h, q2, second_bias);
            ops::matmul_nt_int8_chain(got, x, q1, first_bias, act, q2, second_bias);
            EXPECT_EQ(0, std::memcmp(expected.raw_data(), got.raw_data(), got.nbytes()))
                << (pack ? "packed" : "plain") << " m " << m << (biases ? "" : " no biases")
                << (act == ops::Activation::None ? " no activation " : " ") << dtype_name(out);
          }
        }
      }
    }
  }
  // A smoothed second product quantizes its input with its own scales: no chain.
  const Tensor smoothing = tensor_from(std::vector<float>(static_cast<size_t>(hidden), 2.f), {hidden});
  const ops::Int8Weight q1 = ops::quantize_weight_int8(w1, true);
  const ops::Int8Weight smoothed = ops::quantize_weight_int8(w2, true, &smoothing);
  Tensor y(DType::F32, {2, n});
  const Tensor x = tensor_from(random_floats(2 * k, 50), {2, k});
  EXPECT_THROW(ops::matmul_nt_int8_chain(y, x, q1, nullptr, ops::Activation::None, smoothed, nullptr),
               InvalidInputError);
  // Products that do not meet.
  EXPECT_THROW(ops::matmul_nt_int8_chain(y, x, q1, nullptr, ops::Activation::None, q1, nullptr),
               InvalidInputError);
}

// The packed int8 product alone, exact at the extremes: k not a multiple of 4 (the
// panels read groups of 4 bytes), n not a multiple of 16 (a partial panel), m with
// partial blocks of rows and more than one 96-row block (ops/cpu/panel_gemm_u8s8.h).
TEST(PackedGemmTest, Int8PackedProductIsExactForAnyShape) {
  const int32_t w_max = ops::int8_weight_max(), a_max = ops::int8_activation_max();
  for (int64_t k : {1, 3, 4, 63, 384}) {
    for (int64_t n : {5, 16, 45}) {
      std::vector<int8_t> b(static_cast<size_t>(n * k));
      for (size_t i = 0; i < b.size(); ++i)
        b[i] = static_cast<int8_t>(i % 3 == 0 ? -w_max : w_max - static_cast<int32_t>(i % 5));
      Tensor bt(DType::I8, {n, k});
      std::memcpy(bt.data<int8_t>(), b.data(), b.size());
      const ops::PackedWeight packed = ops::pack_weight_s8(bt);
      for (int64_t m : {1, 5, 7, 97, 200}) {
        const int64_t rows = ops::cpu::packed_s8_rows(m);
        std::vector<uint8_t> a(static_cast<size_t>(rows * k), 0);
        for (int64_t i = 0; i < m * k; ++i)
          a[static_cast<size_t>(i)] = static_cast<uint8_t>(i % 7 == 0 ? 1 : a_max - i % 3);
        std::vector<int32_t> c(static_cast<size_t>(rows * n)), expected(static_cast<size_t>(m * n));
        ops::cpu::gemm_u8s8s32_packed(c.data(), a.data(), packed.data.get(), m, n, k);
        ops::reference::gemm_u8s8s32(expected.data(), a.data(), b.data(), m, n, k);
        c.resize(expected.size());
        EXPECT_EQ(c, expected) << "m " << m << " n " << n << " k " << k;
      }
    }
  }
}

// The packed int8 product's sums in blocks of rows (gemm_u8s8s32_packed_blocks), on one
// thread, where blocks of a power of two rows are cut from the caller's padded rows: the
// blocks cover the rows in order and their sums are the reference's, bit for bit, for row
// counts off a block, past oneDNN's chunk of 1,024 rows by a few (exact) and by many
// (rounded up) rows.
TEST(PackedGemmTest, Int8SumsInBlocksOfRowsAreExact) {
  const int32_t w_max = ops::int8_weight_max(), a_max = ops::int8_activation_max();
  const ThreadScope one_thread(1);
  for (const auto& [n, k] : std::vector<std::pair<int64_t, int64_t>>{{384, 384}, {1536, 384}, {45, 7}}) {
    std::vector<int8_t> b(static_cast<size_t>(n * k));
    for (size_t i = 0; i < b.size(); ++i)
      b[i] = static_cast<int8_t>(i % 3 == 0 ? -w_max : w_max - static_cast<int32_t>(i % 7));
    Tensor bt(DType::I8, {n, k});
    std::memcpy(bt.data<int8_t>(), b.data(), b.size());
    const ops::PackedWeight packed = ops::pack_weight_s8(bt);
    for (int64_t m : {1, 31, 100, 129, 1030, 1100}) {
      const int64_t rows = ops::cpu::packed_s8_rows(m);
      std::vector<uint8_t> a(static_cast<size_t>(rows * k), 0);
      for (int64_t i = 0; i < m * k; ++i)
        a[static_cast<size_t>(i)] = static_cast<uint8_t>(i % 11 == 0 ? 0 : a_max - i % 5);
      std::vector<int32_t> c(static_cast<size_t>(m * n), -7), expected(static_cast<size_t>(m * n));
      int64_t next = 0;
      ops::cpu::gemm_u8s8s32_packed_blocks(a.data(), packed.data.get(), m, n, k,
                                           [&](int64_t first, int64_t count, const int32_t* sums) {
                                             ASSERT_EQ(first, next) << "m " << m << " n " << n;
                                             ASSERT_GT(count, 0);
                                             ASSERT_LE(first + count, m);
                                             std::copy(sums, sums + count * n, c.begin() + first * n);
                                             next = first + count;
                                           });
      EXPECT_EQ(next, m) << "m " << m << " n " << n << " k " << k;
      ops::reference::gemm_u8s8s32(expected.data(), a.data(), b.data(), m, n, k);
      EXPECT_EQ(c, expected) << "m " << m << " n " << n << " k " << k;
    }
  }
}

// int8 products of 1 to kGemvS8MaxRows rows read oneDNN's blocked weight directly
// (ops/cpu/gemv_u8s8_blocked.h): the same int32 sums as the reference, bit for bit, on
// depths off a group of 4 and columns off a block of 64, writing only their rows; every
// weight of these shapes takes that path where oneDNN packs int8 weights and the CPU has
// AVX512-VNNI.
TEST(PackedGemmTest, FewInt8RowsReadTheBlockedWeightDirectly) {
  const bool onednn_layout = ops::cpu::gemm_library() == ops::cpu::GemmLibrary::OneDnn &&
                             ops::cpu::onednn::packs_weights(ops::cpu::onednn::MatmulType::U8S8S32);
  const int32_t w_max = ops::int8_weight_max(), a_max = ops::int8_activation_max();
  for (const auto& [n, k] : std::vector<std::pair<int64_t, int64_t>>{
           {5, 1}, {45, 7}, {64, 64}, {130, 33}, {768, 768}, {70, 3071}}) {
    std::vector<int8_t> b(static_cast<size_t>(n * k));
    for (size_t i = 0; i < b.size(); ++i)
      b[i] = static_cast<int8_t>(i % 3 == 0 ? -w_max : w_max - static_cast<int32_t>(i % 7));
    Tensor bt(DType::I8, {n, k});
    std::memcpy(bt.data<int8_t>(), b.data(), b.size());
    const ops::PackedWeight packed = ops::pack_weight_s8(bt);
    if (onednn_layout) {
      EXPECT_EQ(ops::cpu::onednn::few_rows_read_directly(packed.data.get()),
                ops::cpu::gemv_u8s8_blocked_available())
          << "n " << n << " k " << k;
    }
    for (int64_t m = 1; m <= ops::cpu::kGemvS8MaxRows + 1; ++m) {
      const int64_t rows = ops::cpu::packed_s8_rows(m), guard = 2;
      std::vector<uint8_t> a(static_cast<size_t>(rows * k), 0);
      for (int64_t i = 0; i < m * k; ++i)
        a[static_cast<size_t>(i)] = static_cast<uint8_t>(i % 11 == 0 ? 0 : a_max - i % 5);
      std::vector<int32_t> c(static_cast<size_t>((rows + guard) * n), -7),
          expected(static_cast<size_t>(m * n));
      ops::cpu::gemm_u8s8s32_packed(c.data(), a.data(), packed.data.get(), m, n, k);
      ops::reference::gemm_u8s8s32(expected.data(), a.data(), b.data(), m, n, k);
      EXPECT_EQ(std::vector<int32_t>(c.begin(), c.begin() + m * n), expected)
          << "m " << m << " n " << n << " k " << k;
      for (int64_t i = rows * n; i < (rows + guard) * n; ++i)
        ASSERT_EQ(c[static_cast<size_t>(i)], -7)
            << "m " << m << " n " << n << " k " << k << ": wrote row " << i / n;
    }
  }
}

// The int8 kernel on a layout made here: a block stride longer than the depth, the
// depth's padding past its last group and the last block's columns past n holding values
// that would change the sums if it read them as weights; rows in registers (up to 4) and
// in chunks, depths of one chunk and of three. Where the CPU or build has no such kernel,
// calling it is an error.
TEST(PackedGemmTest, BlockedInt8GemvReadsOnlyTheWeightsBytes) {
  for (const auto& [k, padded_groups] : std::vector<std::pair<int64_t, int64_t>>{{22, 20}, {601, 160}}) {
    const int64_t n = 150, groups = (k + 3) / 4, block = ops::cpu::kGemvS8ColumnBlock;
    const int64_t blocks = (n + block - 1) / block, stride = padded_groups * 4 * block;
    std::vector<int8_t> b(static_cast<size_t>(n * k));
    for (size_t i = 0; i < b.size(); ++i) b[i] = static_cast<int8_t>(static_cast<int>(i * 37 % 255) - 127);
    std::vector<int8_t> layout(static_cast<size_t>(blocks * stride), 99);
    for (int64_t j = 0; j < blocks * block; ++j)
      for (int64_t i = 0; i < groups * 4; ++i) {
        // Inside the last group, the padding must be zero (the kernel's contract); past n,
        // anything.
        const bool real = j < n && i < k;
        const int8_t value = real ? b[static_cast<size_t>(j * k + i)] : (j < n ? 0 : 99);
        layout[static_cast<size_t>(j / block * stride + i / 4 * block * 4 + j % block * 4 + i % 4)] = value;
      }
    for (const int64_t m : {int64_t{1}, int64_t{4}, int64_t{5}, int64_t{9}, ops::cpu::kGemvS8MaxRows}) {
      std::vector<uint8_t> a(static_cast<size_t>(m * k));
      for (size_t i = 0; i < a.size(); ++i) a[i] = static_cast<uint8_t>(i * 53 % 256);
      std::vector<int32_t> got(static_cast<size_t>(m * n)), expected(static_cast<size_t>(m * n));
      if (!ops::cpu::gemv_u8s8_blocked_available()) {
        EXPECT_THROW(ops::cpu::gemv_u8s8s32_blocked(got.data(), a.data(), layout.data(), m, n, k, stride),
                     Error);
        continue;
      }
      ops::cpu::gemv_u8s8s32_blocked(got.data(), a.data(), layout.data(), m, n, k, stride);
      ops::reference::gemm_u8s8s32(expected.data(), a.data(), b.data(), m, n, k);
      EXPECT_EQ(got, expected) << "k " << k << " m " << m;
    }
  }
}

TEST(PackedGemmTest, Bf16PackedMatchesTheReferenceUnderOneDnn) {
  const int64_t n = 45, k = 200;
  const auto w = random_floats(static_cast<size_t>(n * k), 42, 0.2f);
  const Tensor wb = ops::to_bf16(tensor_from(w, {n, k}));
  if (!ops::packs_bf16_weights()) {  // MKL, or oneDNN on a CPU without AVX-512
    EXPECT_THROW(ops::pack_weight_bf16(wb), Error);
    return;
  }
  const ops::PackedWeight packed = ops::pack_weight_bf16(wb);
  for (int64_t m : {1, 17, 130, 300}) {  // 17 and 300 run a padded chunk through scratch
    const auto x = random_floats(static_cast<size_t>(m * k), 43 + static_cast<uint32_t>(m));
    Tensor y(DType::F32, {m, n});
    ops::matmul_nt_bf16_packed(y, tensor_from(x, {m, k}), packed);
    std::vector<uint16_t> xb(x.size());
    ops::cpu::float_to_bf16(xb.data(), x.data(), static_cast<int64_t>(x.size()));
    std::vector<float> expected(static_cast<size_t>(m * n));
    ops::reference::gemm_bf16(expected.data(), xb.data(), wb.data<uint16_t>(), m, n, k);
    const std::vector<float> got(y.data<float>(), y.data<float>() + m * n);
    EXPECT_LT(max_abs_diff(got, expected), 1e-4f * max_abs(expected)) << "m " << m;
  }
}

// Products of many rows run as one share of the rows per thread (ops/cpu/onednn_matmul.h,
// kThreadRowsMin): bf16 gives the bits one thread gives, int8 the exact sums, on row counts
// around the threshold and past a chunk whose shares end off a whole step, writing only
// their rows.
TEST(PackedGemmTest, ThreadSharesGiveTheOneThreadResults) {
  const int64_t n = 45, k = 72, guard = 16;
  const auto w = random_floats(static_cast<size_t>(n * k), 61, 0.3f);
  const Tensor wb = ops::to_bf16(tensor_from(w, {n, k}));
  std::vector<int8_t> ws(static_cast<size_t>(n * k));
  const int32_t w_max = ops::int8_weight_max(), a_max = ops::int8_activation_max();
  for (size_t i = 0; i < ws.size(); ++i)
    ws[i] = static_cast<int8_t>(static_cast<int32_t>(i * 37 % static_cast<size_t>(2 * w_max + 1)) - w_max);
  Tensor ws_tensor(DType::I8, {n, k});
  std::memcpy(ws_tensor.data<int8_t>(), ws.data(), ws.size());
  const ops::PackedWeight packed_s8 = ops::pack_weight_s8(ws_tensor);
  const bool with_bf16 = ops::packs_bf16_weights();
  const ops::PackedWeight packed_bf16 = with_bf16 ? ops::pack_weight_bf16(wb) : ops::PackedWeight{};
  for (int64_t m : {511, 512, 513, 1100, 2053}) {
    const auto x = random_floats(static_cast<size_t>(m * k), 62 + static_cast<uint32_t>(m));
    if (with_bf16) {
      std::vector<uint16_t> xb(x.size());
      ops::cpu::float_to_bf16(xb.data(), x.data(), static_cast<int64_t>(x.size()));
      std::vector<float> one(static_cast<size_t>((m + guard) * n), std::nanf(""));
      std::vector<float> two = one;
      {
        const ThreadScope threads(1);
        ops::cpu::gemm_bf16_packed(one.data(), xb.data(), packed_bf16.data.get(), m, n, k,
                                   /*a_padded=*/false);
      }
      {
        const ThreadScope threads(2);
        ops::cpu::gemm_bf16_packed(two.data(), xb.data(), packed_bf16.data.get(), m, n, k,
                                   /*a_padded=*/false);
      }
      EXPECT_EQ(std::memcmp(one.data(), two.data(), static_cast<size_t>(m * n) * sizeof(float)), 0)
          << "bf16, m " << m;
      for (int64_t i = m * n; i < (m + guard) * n; ++i)
        ASSERT_TRUE(std::isnan(two[static_cast<size_t>(i)])) << "bf16, m " << m << ": wrote row " << i / n;
    }
    const int64_t rows = ops::cpu::packed_s8_rows(m);
    std::vector<uint8_t> a(static_cast<size_t>(rows * k), 0);
    for (int64_t i = 0; i < m * k; ++i)
      a[static_cast<size_t>(i)] = static_cast<uint8_t>((i * 29 + m) % (a_max + 1));
    constexpr int32_t kUnwritten = -7;
    std::vector<int32_t> c(static_cast<size_t>((rows + guard) * n), kUnwritten);
    std::vector<int32_t> expected(static_cast<size_t>(m * n));
    {
      const ThreadScope threads(2);
      ops::cpu::gemm_u8s8s32_packed(c.data(), a.data(), packed_s8.data.get(), m, n, k);
    }
    for (int64_t i = rows * n; i < (rows + guard) * n; ++i)
      ASSERT_EQ(c[static_cast<size_t>(i)], kUnwritten) << "int8, m " << m << ": wrote row " << i / n;
    ops::reference::gemm_u8s8s32(expected.data(), a.data(), ws.data(), m, n, k);
    c.resize(expected.size());
    EXPECT_EQ(c, expected) << "int8, m " << m;
  }
}

// The bias and activation run in oneDNN's kernel (its post-ops), and bf16 products take
// and give bf16 tensors: each combination against the reference product followed by the
// reference bias and activation (and, for a bf16 result, rounding to bf16).
TEST(PackedGemmTest, Bf16PackedEpilogueMatchesTheReference) {
  const int64_t n = 40, k = 72;
  const auto w = random_floats(static_cast<size_t>(n * k), 7, 0.3f);
  const Tensor wb = ops::to_bf16(tensor_from(w, {n, k}));
  if (!ops::packs_bf16_weights()) {  // MKL, or oneDNN on a CPU without AVX-512
    EXPECT_THROW(ops::pack_weight_bf16(wb), Error);
    return;
  }
  const ops::PackedWeight packed = ops::pack_weight_bf16(wb);
  const Tensor bias = tensor_from(random_floats(static_cast<size_t>(n), 8), {n});
  for (ops::Activation act : {ops::Activation::None, ops::Activation::GeluErf, ops::Activation::GeluTanh,
                              ops::Activation::QuickGelu, ops::Activation::Relu, ops::Activation::Silu,
                              ops::Activation::Tanh}) {
    for (int64_t m : {1, 17, 300}) {
      const auto x = random_floats(static_cast<size_t>(m * k), 9 + static_cast<uint32_t>(m));
      std::vector<uint16_t> xb(x.size());
      ops::cpu::float_to_bf16(xb.data(), x.data(), static_cast<int64_t>(x.size()));
      std::vector<float> expected(static_cast<size_t>(m * n));
      ops::reference::gemm_bf16(expected.data(), xb.data(), wb.data<uint16_t>(), m, n, k);
      ops::reference::bias_activation_f32(expected.data(), bias.data<float>(), m, n, act);
      const float scale = max_abs(expected);
      Tensor x_bf16(DType::BF16, {m, k});
      std::copy(xb.begin(), xb.end(), x_bf16.data<uint16_t>());
      for (bool bf16_in : {false, true}) {
        for (bool bf16_out : {false, true}) {
          Tensor y(bf16_out ? DType::BF16 : DType::F32, {m, n});
          ops::matmul_nt_bf16_packed(y, bf16_in ? x_bf16 : tensor_from(x, {m, k}), packed, &bias, act);
          const Tensor got = y.to_float32();
          float worst = 0.f;  // the largest error over its bound
          for (int64_t i = 0; i < m * n; ++i) {
            const float e = expected[static_cast<size_t>(i)];
            // bf16 keeps 8 significant bits: a rounding error of at most 2^-9 relative.
            const float bound = 2e-4f * scale + (bf16_out ? std::ldexp(std::fabs(e), -8) : 0.f);
            worst = std::max(worst, std::fabs(got.data<float>()[i] - e) / bound);
          }
          EXPECT_LE(worst, 1.f) << ops::activation_name(act) << " m " << m << (bf16_in ? " bf16 in" : " f32 in")
                                << (bf16_out ? " bf16 out" : " f32 out");
        }
      }
    }
  }
  Tensor y(DType::I32, {2, n});  // neither F32 nor BF16
  EXPECT_THROW(ops::matmul_nt_bf16_packed(y, tensor_from(random_floats(2 * k, 1), {2, k}), packed), InvalidInputError);
}

// bf16 products of 1 to kGemvBf16MaxRows rows read oneDNN's blocked weight directly
// (ops/cpu/gemv_bf16_blocked.h): against the reference on odd depths and partial column
// blocks, float32 and bf16 results, writing only their rows; every weight of these shapes
// takes that path where oneDNN packs bf16 weights and the CPU has AVX512-BF16 (the
// epilogue's activations: Bf16PackedEpilogueMatchesTheReference, whose single rows run it).
TEST(PackedGemmTest, FewBf16RowsReadTheBlockedWeightDirectly) {
  if (!ops::packs_bf16_weights()) {  // MKL, or oneDNN on a CPU without AVX-512
    EXPECT_THROW(ops::pack_weight_bf16(ops::to_bf16(tensor_from(random_floats(8, 1), {2, 4}))), Error);
    return;
  }
  const int64_t guard = 2;
  for (const auto& [n, k] : std::vector<std::pair<int64_t, int64_t>>{
           {37, 1}, {45, 7}, {64, 32}, {130, 33}, {768, 768}, {70, 3071}}) {
    const auto w = random_floats(static_cast<size_t>(n * k), 81, 0.3f);
    const Tensor wb = ops::to_bf16(tensor_from(w, {n, k}));
    const ops::PackedWeight packed = ops::pack_weight_bf16(wb);
    EXPECT_EQ(ops::cpu::onednn::few_rows_read_directly(packed.data.get()),
              ops::cpu::gemv_bf16_blocked_available())
        << "n " << n << " k " << k;
    const auto bias_values = random_floats(static_cast<size_t>(n), 82);
    for (int64_t m = 1; m <= ops::cpu::kGemvBf16MaxRows + 1; ++m) {
      const auto x = random_floats(static_cast<size_t>(m * k), 83 + static_cast<uint32_t>(m));
      std::vector<uint16_t> xb(x.size());
      ops::cpu::float_to_bf16(xb.data(), x.data(), static_cast<int64_t>(x.size()));
      std::vector<float> expected(static_cast<size_t>(m * n));
      ops::reference::gemm_bf16(expected.data(), xb.data(), wb.data<uint16_t>(), m, n, k);
      ops::reference::bias_activation_f32(expected.data(), bias_values.data(), m, n,
                                          ops::Activation::GeluErf);
      const float scale = std::max(1.f, max_abs(expected));
      for (const bool bf16_out : {false, true}) {
        std::vector<float> c(static_cast<size_t>((m + guard) * n), std::nanf(""));
        std::vector<uint16_t> cb(static_cast<size_t>((m + guard) * n), 0x7fc0);  // bf16 NaN
        ops::cpu::gemm_bf16_packed(bf16_out ? static_cast<void*>(cb.data()) : c.data(), xb.data(),
                                   packed.data.get(), m, n, k, /*a_padded=*/false, bias_values.data(),
                                   ops::Activation::GeluErf, bf16_out);
        if (bf16_out)
          for (size_t i = 0; i < c.size(); ++i) c[i] = bf16_to_float(cb[i]);
        float worst = 0.f;
        for (int64_t i = 0; i < m * n; ++i) {
          const float e = expected[static_cast<size_t>(i)];
          const float bound = 2e-4f * scale + (bf16_out ? std::ldexp(std::fabs(e), -8) : 0.f);
          worst = std::max(worst, std::fabs(c[static_cast<size_t>(i)] - e) / bound);
        }
        EXPECT_LE(worst, 1.f) << "n " << n << " k " << k << " m " << m
                              << (bf16_out ? " bf16 out" : " f32 out");
        for (int64_t i = m * n; i < (m + guard) * n; ++i)
          ASSERT_TRUE(std::isnan(c[static_cast<size_t>(i)]))
              << "n " << n << " k " << k << " m " << m << ": wrote row " << i / n;
      }
    }
  }
}

// The bf16 kernel on a layout made here: a block stride longer than the depth, and NaN in
// every element it must not use (the depth's padding past its last pair, the last block's
// columns past n). Where the CPU or build has no such kernel, calling it is an error.
TEST(PackedGemmTest, BlockedBf16GemvReadsOnlyTheWeightsElements) {
  const int64_t n = 150, k = 21, pairs = (k + 1) / 2, padded_pairs = 20,
                block = ops::cpu::kGemvBf16ColumnBlock;
  const int64_t blocks = (n + block - 1) / block, stride = padded_pairs * 2 * block;
  const auto w = random_floats(static_cast<size_t>(n * k), 91, 0.3f);
  std::vector<uint16_t> wb(w.size());
  ops::cpu::float_to_bf16(wb.data(), w.data(), static_cast<int64_t>(w.size()));
  std::vector<uint16_t> layout(static_cast<size_t>(blocks * stride), 0x7fc0);
  for (int64_t j = 0; j < n; ++j)
    for (int64_t i = 0; i < pairs * 2; ++i)  // inside the last pair the padding is zero (the contract)
      layout[static_cast<size_t>(j / block * stride + i / 2 * block * 2 + j % block * 2 + i % 2)] =
          i < k ? wb[static_cast<size_t>(j * k + i)] : 0;
  for (int64_t m = 1; m <= ops::cpu::kGemvBf16MaxRows; ++m) {
    const auto x = random_floats(static_cast<size_t>(m * k), 92 + static_cast<uint32_t>(m));
    std::vector<uint16_t> xb(x.size());
    ops::cpu::float_to_bf16(xb.data(), x.data(), static_cast<int64_t>(x.size()));
    std::vector<float> got(static_cast<size_t>(m * n)), expected(static_cast<size_t>(m * n));
    if (!ops::cpu::gemv_bf16_blocked_available()) {
      EXPECT_THROW(ops::cpu::gemv_bf16_blocked(got.data(), xb.data(), layout.data(), m, n, k, stride, nullptr,
                                               ops::Activation::None, false),
                   Error);
      continue;
    }
    ops::cpu::gemv_bf16_blocked(got.data(), xb.data(), layout.data(), m, n, k, stride, nullptr,
                                ops::Activation::None, false);
    ops::reference::gemm_bf16(expected.data(), xb.data(), wb.data(), m, n, k);
    EXPECT_LT(max_abs_diff(got, expected), 1e-4f * std::max(1.f, max_abs(expected))) << "m " << m;
  }
}

// Scratch keeps its largest size and its contents: a smaller request after a larger one
// is the same memory, untouched (no zero-filling on reuse), 64-byte aligned.
TEST(ScratchBufferTest, GrowsOnlyAndKeepsItsContents) {
  ScratchBuffer<float> scratch;
  float* a = scratch.get(1000);
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(a) % 64, 0u);
  for (int i = 0; i < 1000; ++i) a[i] = static_cast<float>(i);
  EXPECT_EQ(scratch.get(10), a);
  float* b = scratch.get(1000);
  EXPECT_EQ(b, a);
  EXPECT_EQ(b[999], 999.f);
  float* c = scratch.get(5000);
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(c) % 64, 0u);
  c[4999] = 1.f;
}

TEST(BufferPoolTest, ReusesReleasedBuffers) {
  const size_t bytes = 3u << 20;
  void* a = pool_allocate(bytes);
  ASSERT_NE(a, nullptr);
  std::memset(a, 1, bytes);
  pool_release(a, bytes);
  void* b = pool_allocate(bytes - 100);  // the same size class
  EXPECT_EQ(a, b);
  void* c = pool_allocate(bytes);  // nothing cached now: a new buffer
  EXPECT_NE(b, c);
  pool_release(b, bytes - 100);
  pool_release(c, bytes);
  void* small = pool_allocate(100);
  ASSERT_NE(small, nullptr);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(small) % 64, 0u);
  pool_release(small, 100);
}

TEST(BufferPoolTest, KeepsNoMoreThanTheMostEverInUse) {
  pool_trim();  // what other tests left cached, and their high water
  EXPECT_EQ(pool_cached_bytes(), 0u);
  const size_t three = 3u << 20, five = 5u << 20;  // two size classes
  void* a = pool_allocate(three);
  void* b = pool_allocate(five);
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  pool_release(a, three);
  pool_release(b, five);
  EXPECT_EQ(pool_cached_bytes(), three + five);  // as much as was in use at once
  void* b2 = pool_allocate(five);
  void* a2 = pool_allocate(three);
  EXPECT_EQ(b2, b);
  EXPECT_EQ(a2, a);
  pool_release(a2, three);
  pool_release(b2, five);
  // Two of the larger class at once: the second misses, and its new buffer takes the most
  // in use to 10 MiB, where 5 in use and 8 cached would be 13: the longest-cached (a) goes.
  void* c = pool_allocate(five);
  void* d = pool_allocate(five);
  EXPECT_EQ(c, b);
  EXPECT_EQ(pool_cached_bytes(), 0u);
  pool_release(c, five);
  pool_release(d, five);
  EXPECT_EQ(pool_cached_bytes(), 2 * five);
  pool_trim();
  EXPECT_EQ(pool_cached_bytes(), 0u);
}

}  // namespace nle::test

// int8 encoder layers run a batch in groups of whole sequences with at least
// kSequenceGroupRows tokens each (the last group may have fewer).
TEST(SequenceGroups, WholeSequencesOfAtLeastMinRows) {
  // Sequence lengths 30, 40, 10, 70, 5, 20.
  const std::vector<int64_t> offsets{0, 30, 70, 80, 150, 155, 175};
  EXPECT_EQ(nle::sequence_groups(offsets, 64), (std::vector<size_t>{0, 2, 4, 6}));
  EXPECT_EQ(nle::sequence_groups(offsets, 1),
            (std::vector<size_t>{0, 1, 2, 3, 4, 5, 6}));
  EXPECT_EQ(nle::sequence_groups(offsets, 1000), (std::vector<size_t>{0, 6}));
  EXPECT_EQ(nle::sequence_groups({0, 12}, 64), (std::vector<size_t>{0, 1}));
  EXPECT_EQ(nle::sequence_groups({0}, 64), (std::vector<size_t>{0}));
}

// Groups only where the threads would all stay busy: sequence_groups' groups, each in
// order to the thread that comes free first, keep 2 threads busy for at least 95% of the
// layer; else the whole batch as one group.
TEST(SequenceGroups, BusyGroupsOnlyWhereNoThreadWaits) {
  // Lengths 30, 40, 10, 70, 5, 20: groups of 70, 80, 25 tokens -> threads busy for 95 and
  // 80 of 175 (share 0.92): the whole batch.
  const std::vector<int64_t> uneven{0, 30, 70, 80, 150, 155, 175};
  EXPECT_EQ(nle::busy_sequence_groups(uneven, 64, 2), (std::vector<size_t>{0, 6}));
  // On one thread nothing waits: sequence_groups' groups.
  EXPECT_EQ(nle::busy_sequence_groups(uneven, 64, 1), (std::vector<size_t>{0, 2, 4, 6}));
  // Eight sequences of 64 tokens: 4 groups for each of 2 threads.
  std::vector<int64_t> even{0};
  for (int i = 0; i < 8; ++i) even.push_back(even.back() + 64);
  EXPECT_EQ(nle::busy_sequence_groups(even, 64, 2), nle::sequence_groups(even, 64));
  // Three such sequences for 2 threads: one thread runs two while the other waits.
  EXPECT_EQ(nle::busy_sequence_groups({0, 64, 128, 192}, 64, 2), (std::vector<size_t>{0, 3}));
  EXPECT_EQ(nle::busy_sequence_groups({0, 12}, 64, 2), (std::vector<size_t>{0, 1}));
  EXPECT_EQ(nle::busy_sequence_groups({0}, 64, 2), (std::vector<size_t>{0}));
  // A batch of more than kWholeBatchRows tokens a thread keeps its groups, busy or not.
  const int64_t n = nle::kWholeBatchRows;
  EXPECT_EQ(nle::busy_sequence_groups({0, n, 2 * n, 3 * n}, 64, 2), (std::vector<size_t>{0, 1, 2, 3}));
}

// A group's scratch: the slot's memory again for the next group on the same thread (its
// core's cache), a slot of its own for each buffer, and no slot past the last.
TEST(SequenceGroups, GroupScratchReusesEachSlot) {
  const nle::Tensor qkv(nle::DType::F32, {4, 12});
  const nle::Tensor intermediate(nle::DType::BF16, {4, 30});
  const nle::Tensor a = nle::group_scratch(0, qkv, 7);
  EXPECT_EQ(a.dtype(), nle::DType::F32);
  EXPECT_EQ(a.shape(), (nle::Shape{7, 12}));
  EXPECT_EQ(nle::group_scratch(0, qkv, 5).raw_data(), a.raw_data());
  const nle::Tensor b = nle::group_scratch(3, intermediate, 9);
  EXPECT_EQ(b.dtype(), nle::DType::BF16);
  EXPECT_EQ(b.shape(), (nle::Shape{9, 30}));
  EXPECT_NE(b.raw_data(), a.raw_data());
  EXPECT_THROW(nle::group_scratch(nle::kGroupScratchSlots, qkv, 1), nle::Error);
}

// bf16 layers' groups: whole sequences cut nearest to equal shares of the tokens.
TEST(SequenceGroups, BalancedGroupsCutNearestToEqualShares) {
  // Sequence lengths 30, 40, 10, 70, 5, 20 (175 tokens).
  const std::vector<int64_t> offsets{0, 30, 70, 80, 150, 155, 175};
  // Halves at 87.5: the boundary at 80 is nearer than 150.
  EXPECT_EQ(nle::balanced_sequence_groups(offsets, 2), (std::vector<size_t>{0, 3, 6}));
  // Thirds at 58 and 116: 70 (nearer than 30), then 150 (nearer than 80).
  EXPECT_EQ(nle::balanced_sequence_groups(offsets, 3), (std::vector<size_t>{0, 2, 4, 6}));
  EXPECT_EQ(nle::balanced_sequence_groups(offsets, 1), (std::vector<size_t>{0, 6}));
  // More parts than sequences: one sequence a group at most, none empty.
  EXPECT_EQ(nle::balanced_sequence_groups(offsets, 10), (std::vector<size_t>{0, 1, 2, 3, 4, 5, 6}));
  EXPECT_EQ(nle::balanced_sequence_groups({0, 12}, 2), (std::vector<size_t>{0, 1}));
  EXPECT_EQ(nle::balanced_sequence_groups({0, 100, 101}, 2), (std::vector<size_t>{0, 1, 2}));
  EXPECT_EQ(nle::balanced_sequence_groups({0}, 2), (std::vector<size_t>{0}));
}
