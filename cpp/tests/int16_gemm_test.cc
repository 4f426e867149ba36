// The int16 products of int8-mixed on CPUs without native bf16 products, and of int8 where
// its 8-bit products would lose an input bit (ops/int16_gemm.h): the panel kernel exact
// at the extremes of its codes, a quantized product within its rounding bound of the
// float32 one, and the rotation (ops/hadamard.h) applied to both sides.
#include "ops/int16_gemm.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <utility>
#include <vector>

#include "nlpengine/errors.h"
#include "ops/activation.h"
#include "ops/cpu/panel_gemm_s16.h"
#include "ops/gemm.h"
#include "ops/hadamard.h"
#include "test_utils.h"

namespace nle::test {

// Codes at the ends of their ranges, the activations' range the widest that int32 holds
// for the weights' (ops::int16_activation_max): row 0 all +max against columns of all
// +max reaches k · a_max · w_max, within 2^31 by construction; other rows mix signs. With
// unit scales the dequantized sums are the exact sums converted to float. k odd (the
// panels read pairs), n not a multiple of 16 (a partial panel), m past a 96-row block.
TEST(Int16GemmTest, PanelProductIsExactAtTheCodeExtremes) {
  for (const int32_t w_max : {127, 511, 32767}) {
    for (const int64_t k : {1, 3, 64, 385, 1536}) {
      const int32_t a_max = ops::int16_activation_max(k, w_max);
      ASSERT_GE(a_max, 1);
      ASSERT_LE(static_cast<int64_t>((k + 1) / 2 * 2) * a_max * w_max, int64_t{2147483647});
      for (const int64_t n : {5, 16, 45}) {
        std::vector<int16_t> w(static_cast<size_t>(n * k));
        for (int64_t j = 0; j < n; ++j)
          for (int64_t q = 0; q < k; ++q)
            w[static_cast<size_t>(j * k + q)] = static_cast<int16_t>(
                j == 0 ? w_max : ((j + q) % 3 == 0 ? -w_max : w_max - static_cast<int32_t>((j * q) % 5)));
        const bool wide = w_max > 127;
        const std::shared_ptr<void> panels = ops::cpu::pack_panels_s16(w.data(), n, k, wide);
        for (const int64_t m : {1, 5, 7, 97, 200}) {
          const int64_t lda = (k + 1) / 2 * 2;
          std::vector<int16_t> a(static_cast<size_t>(m * lda), 0);
          for (int64_t r = 0; r < m; ++r)
            for (int64_t q = 0; q < k; ++q)
              a[static_cast<size_t>(r * lda + q)] = static_cast<int16_t>(
                  r == 0 ? a_max : ((r * 7 + q) % 4 == 0 ? -a_max : a_max - static_cast<int32_t>(q % 3)));
          std::vector<float> ones_m(static_cast<size_t>(m), 1.f), ones_n(static_cast<size_t>(n), 1.f);
          ops::cpu::S8Dequantization dq;
          dq.row_scale = ones_m.data();
          dq.col_scale = ones_n.data();
          std::vector<float> y(static_cast<size_t>(m * n));
          ops::cpu::gemm_s16_dequantize_panels(y.data(), a.data(), panels.get(), m, n, k, wide, dq);
          int mismatches = 0;
          for (int64_t r = 0; r < m; ++r)
            for (int64_t j = 0; j < n; ++j) {
              int64_t sum = 0;
              for (int64_t q = 0; q < k; ++q)
                sum += int64_t{a[static_cast<size_t>(r * lda + q)]} * w[static_cast<size_t>(j * k + q)];
              if (y[static_cast<size_t>(r * n + j)] != static_cast<float>(sum)) ++mismatches;
            }
          EXPECT_EQ(mismatches, 0) << "w_max " << w_max << " m " << m << " n " << n << " k " << k;
        }
      }
    }
  }
}

// y = x · wᵀ + b through quantize_weight_int16 and matmul_nt_int16 against float32: each
// output within the bound its two roundings allow, Σ_k |x_k| |w_k| (1 / (2 w_max) +
// 1 / (2 a_max)) (plus float32 slack); the fused activation equal to applying it after.
// Rows quantized symmetrically to ±code_max: x · (1 / scale) rounded to nearest, ties to
// even, scale = max |x| / code_max, padding up to ldq zero. 300 columns run the vector body
// and its tail; row 2 has scale 1 and ties at every column but the first.
TEST(Int16GemmTest, QuantizeRowsRoundsToNearestEven) {
  const int64_t rows = 4, cols = 300, ldq = 302;
  const int32_t code_max = 32767;
  auto x = random_floats(static_cast<size_t>(rows * cols), 61, 5.f);
  for (int64_t c = 0; c < cols; ++c) x[static_cast<size_t>(cols + c)] = 0.f;
  for (int64_t c = 0; c < cols; ++c)
    x[static_cast<size_t>(2 * cols + c)] = (c % 2 ? -1.f : 1.f) * (static_cast<float>(c) + 0.5f);
  x[static_cast<size_t>(2 * cols)] = 32767.f;
  std::vector<int16_t> q(static_cast<size_t>(rows * ldq), -1);
  std::vector<float> scale(rows);
  ops::cpu::quantize_rows_s16(q.data(), scale.data(), x.data(), rows, cols, ldq, code_max);
  for (int64_t r = 0; r < rows; ++r) {
    float amax = 0.f;
    for (int64_t c = 0; c < cols; ++c) amax = std::max(amax, std::fabs(x[static_cast<size_t>(r * cols + c)]));
    const float s = amax > 0.f ? amax / static_cast<float>(code_max) : 1.f;
    EXPECT_EQ(scale[static_cast<size_t>(r)], s) << r;
    const float inv = 1.f / s;
    for (int64_t c = 0; c < cols; ++c) {
      const float v = std::clamp(x[static_cast<size_t>(r * cols + c)] * inv, -32767.f, 32767.f);
      EXPECT_EQ(q[static_cast<size_t>(r * ldq + c)], static_cast<int16_t>(std::nearbyint(v)))
          << r << "," << c;
    }
    for (int64_t c = cols; c < ldq; ++c) EXPECT_EQ(q[static_cast<size_t>(r * ldq + c)], 0);
  }
  EXPECT_EQ(scale[2], 1.f);
  EXPECT_EQ(q[static_cast<size_t>(2 * ldq + 1)], -2);      // -1.5
  EXPECT_EQ(q[static_cast<size_t>(2 * ldq + 2)], 2);       // 2.5
  EXPECT_EQ(q[static_cast<size_t>(2 * ldq + 299)], -300);  // -299.5, in the tail
}

TEST(Int16GemmTest, QuantizedProductIsWithinItsRoundingBound) {
  for (const int32_t w_max : {127, 511}) {
    for (const auto& [n, k] : std::vector<std::pair<int64_t, int64_t>>{{45, 200}, {300, 31}, {64, 1536}}) {
      const auto wv = random_floats(static_cast<size_t>(n * k), 51, 0.2f);
      const Tensor w = tensor_from(wv, {n, k});
      const Tensor bias = tensor_from(random_floats(static_cast<size_t>(n), 52), {n});
      // Unrotated: the bound is the two roundings' of these values (rotated below).
      const ops::Int16Weight q = ops::quantize_weight_int16(w, w_max, /*rotate=*/false);
      EXPECT_EQ(q.wide, w_max > 127);
      const float a_max = static_cast<float>(ops::int16_activation_max(k, w_max));
      for (const int64_t m : {1, 17, 130}) {
        auto xv = random_floats(static_cast<size_t>(m * k), 53, 3.f);
        xv[0] = 40.f;  // an outlier channel, as after a layer norm
        const Tensor x = tensor_from(xv, {m, k});
        Tensor y(DType::F32, {m, n}), gelu(DType::F32, {m, n});
        ops::matmul_nt_int16(y, x, q, &bias, ops::Activation::None);
        ops::matmul_nt_int16(gelu, x, q, &bias, ops::Activation::GeluErf);
        int outside = 0;
        for (int64_t r = 0; r < m; ++r) {
          float row_max = 0.f;
          for (int64_t c = 0; c < k; ++c) row_max = std::max(row_max, std::fabs(xv[r * k + c]));
          for (int64_t j = 0; j < n; ++j) {
            double exact = bias.data<float>()[j], bound = 0.0;
            float w_row_max = 0.f;
            for (int64_t c = 0; c < k; ++c) w_row_max = std::max(w_row_max, std::fabs(wv[j * k + c]));
            for (int64_t c = 0; c < k; ++c) {
              const double xw = double{xv[r * k + c]} * wv[j * k + c];
              exact += xw;
              // |x| · half a weight step + |w| · half an activation step + their product.
              bound += std::fabs(xv[r * k + c]) * 0.5 * w_row_max / w_max +
                       std::fabs(wv[j * k + c]) * 0.5 * row_max / a_max +
                       0.25 * (w_row_max / w_max) * (row_max / a_max);
            }
            const double got = y.data<float>()[r * n + j];
            if (std::fabs(got - exact) > bound + 1e-5 * (1.0 + std::fabs(exact))) ++outside;
          }
        }
        EXPECT_EQ(outside, 0) << "w_max " << w_max << " m " << m << " n " << n << " k " << k;
        ops::cpu::activate_f32(y.data<float>(), m * n, ops::Activation::GeluErf);
        EXPECT_EQ(0, std::memcmp(y.data<float>(), gelu.data<float>(), y.nbytes())) << "m " << m;
      }
    }
  }
}

// Rotated rows quantize as the reference rotation (the normalized matrix) followed by the
// unrotated quantizer: the same codes but where a value lies within rounding of a step's
// edge, the same scales to float rounding; the padding past cols zero.
TEST(Int16GemmTest, RotatedRowsQuantizeAsTheReference) {
  const int64_t rows = 7, cols = 384, ldq = 386, block = ops::hadamard_block(cols);
  const int32_t code_max = 2736;
  const auto x = random_floats(static_cast<size_t>(rows * cols), 71, 2.f);
  std::vector<float> rotated = x;
  ops::reference::hadamard_rows(rotated.data(), rows, cols, block);
  std::vector<int16_t> q(static_cast<size_t>(rows * ldq), -1), q_ref(q.size(), -1);
  std::vector<float> s(rows), s_ref(rows);
  ops::cpu::quantize_rows_s16(q.data(), s.data(), x.data(), rows, cols, ldq, code_max, block);
  ops::cpu::quantize_rows_s16(q_ref.data(), s_ref.data(), rotated.data(), rows, cols, ldq, code_max);
  int differing = 0;
  for (size_t i = 0; i < q.size(); ++i) {
    EXPECT_LE(std::abs(int{q[i]} - int{q_ref[i]}), 1) << i;
    differing += q[i] != q_ref[i];
  }
  EXPECT_LE(differing, 8);
  for (int64_t r = 0; r < rows; ++r) {
    EXPECT_NEAR(s[static_cast<size_t>(r)], s_ref[static_cast<size_t>(r)],
                1e-5f * s_ref[static_cast<size_t>(r)]);
    for (int64_t c = cols; c < ldq; ++c) EXPECT_EQ(q[static_cast<size_t>(r * ldq + c)], 0);
  }
}

// Weights with a few columns 10x the rest, 8-bit codes: unrotated each row's codes are set
// by those few; rotated, they spread over their blocks and the product comes closer to the
// float32 one. The rotated product is still the product itself.
TEST(Int16GemmTest, RotationCutsTheErrorOfWeightsWithOutlierColumns) {
  const int64_t m = 40, n = 64, k = 384;
  const auto x = random_floats(static_cast<size_t>(m * k), 72, 1.f);
  auto w = random_floats(static_cast<size_t>(n * k), 73, 0.1f);
  for (int64_t r = 0; r < n; ++r)
    for (int64_t c = 5; c < k; c += 47) w[static_cast<size_t>(r * k + c)] *= 10.f;
  std::vector<float> expected(static_cast<size_t>(m * n));
  ops::reference::gemm_f32(expected.data(), x.data(), w.data(), false, true, m, n, k, k, k, n, 1.f, 0.f);
  const Tensor xt = tensor_from(x, {m, k}), wt = tensor_from(w, {n, k});
  auto error = [&](const ops::Int16Weight& q) {
    Tensor y(DType::F32, {m, n});
    ops::matmul_nt_int16(y, xt, q);
    return relative_rms_error(y, expected);
  };
  const ops::Int16Weight plain = ops::quantize_weight_int16(wt, 127, /*rotate=*/false);
  const ops::Int16Weight rotated = ops::quantize_weight_int16(wt, 127);
  EXPECT_EQ(plain.rotation_block, 1);
  EXPECT_EQ(rotated.rotation_block, 128);
  const double plain_error = error(plain), rotated_error = error(rotated);
  std::printf("int16, 8-bit weights with outlier columns: relative RMS error %.5f unrotated, %.5f rotated\n",
              plain_error, rotated_error);
  EXPECT_LT(rotated_error, 0.6 * plain_error);
  EXPECT_LT(rotated_error, 0.01);
}

// A weight of more rows than one of quantize_weight_int16's chunks (256 panels of 16),
// its last panel partial, quantized panel by panel: multiplied by the unit rows e_c (each
// quantized to its top code, scale 1 / top, so exactly 1), the product gives back every
// w[n, c] as scale[n] · q[n, c], the reference's codes (symmetric per row, nearest, ties
// to even) and scales.
TEST(Int16GemmTest, WeightsOfManyPanelsQuantizeAsTheReference) {
  const int64_t n = 16 * 256 + 16 * 3 + 5, k = 10;
  for (const int32_t w_max : {127, 511}) {
    const auto wv = random_floats(static_cast<size_t>(n * k), 56, 1.f);
    const ops::Int16Weight q = ops::quantize_weight_int16(tensor_from(wv, {n, k}), w_max, /*rotate=*/false);
    std::vector<float> unit(static_cast<size_t>(k * k), 0.f);
    for (int64_t c = 0; c < k; ++c) unit[static_cast<size_t>(c * k + c)] = 1.f;
    Tensor y(DType::F32, {k, n});
    ops::matmul_nt_int16(y, tensor_from(unit, {k, k}), q);
    int64_t differ = 0;
    for (int64_t r = 0; r < n; ++r) {
      float amax = 0.f;
      for (int64_t c = 0; c < k; ++c) amax = std::max(amax, std::fabs(wv[static_cast<size_t>(r * k + c)]));
      const float s = amax / static_cast<float>(w_max);
      EXPECT_FLOAT_EQ(q.scale.data<float>()[r], s) << "row " << r;
      for (int64_t c = 0; c < k; ++c) {
        const float code = std::nearbyint(wv[static_cast<size_t>(r * k + c)] / s);
        if (std::fabs(y.data<float>()[c * n + r] - s * code) > 1e-6f * amax) ++differ;
      }
    }
    EXPECT_EQ(differ, 0) << "w_max " << w_max;
  }
}

TEST(Int16GemmTest, BadWeightsAndShapesAreRefused) {
  const Tensor w = tensor_from(random_floats(40, 54), {4, 10});
  EXPECT_THROW(ops::quantize_weight_int16(w, 0), InvalidInputError);
  EXPECT_THROW(ops::quantize_weight_int16(w, 40000), InvalidInputError);
  // Weight codes so wide that not one activation level would keep the sums in int32.
  Tensor long_w(DType::F32, {1, 70000});
  EXPECT_THROW(ops::quantize_weight_int16(long_w, 32767), InvalidInputError);
  const ops::Int16Weight q = ops::quantize_weight_int16(w, 127);
  const Tensor x = tensor_from(random_floats(9, 55), {1, 9});
  Tensor y(DType::F32, {1, 4});
  EXPECT_THROW(ops::matmul_nt_int16(y, x, q), InvalidInputError);
  Tensor zeros(DType::F32, {4, 10});
  std::memset(zeros.raw_data(), 0, zeros.nbytes());
  const ops::Int16Weight zero = ops::quantize_weight_int16(zeros, 127);  // scale 1, codes 0
  EXPECT_EQ(zero.scale.data<float>()[0], 1.f);
}

}  // namespace nle::test
