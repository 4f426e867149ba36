// The block Walsh–Hadamard rotation of the int8 products (ops/hadamard.h): the CPU
// butterflies against the matrix itself, and what the rotation does to an int8 product.
#include "ops/hadamard.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <vector>

#include "ops/gemm.h"
#include "ops/int8_gemm.h"
#include "test_utils.h"

namespace nle::test {

TEST(HadamardTest, BlockIsTheLargestPowerOfTwoDividingTheWidth) {
  EXPECT_EQ(ops::hadamard_block(384), 128);   // MiniLM's hidden width, 3 · 128
  EXPECT_EQ(ops::hadamard_block(1536), 128);  // and its feed-forward's
  EXPECT_EQ(ops::hadamard_block(512), 128);
  EXPECT_EQ(ops::hadamard_block(96), 32);
  EXPECT_EQ(ops::hadamard_block(24), 8);
  EXPECT_EQ(ops::hadamard_block(100), 1);  // 4 divides it: below 8, no rotation
  EXPECT_EQ(ops::hadamard_block(77), 1);
  EXPECT_EQ(ops::hadamard_block(0), 1);
}

TEST(HadamardTest, ButterfliesMatchTheMatrix) {
  for (const int64_t block : {2, 4, 8, 16, 32, 64, 128}) {
    const int64_t rows = 3, cols = 3 * block;
    const auto x = random_floats(static_cast<size_t>(rows * cols), 5 + static_cast<uint32_t>(block), 2.f);
    std::vector<float> fast = x, exact = x;
    ops::hadamard_rows(fast.data(), rows, cols, block);
    ops::reference::hadamard_rows(exact.data(), rows, cols, block);
    double ss_x = 0.0, ss_y = 0.0;
    for (size_t i = 0; i < x.size(); ++i) {
      EXPECT_NEAR(fast[i], exact[i], 2e-6f * std::sqrt(static_cast<float>(block)))
          << "block " << block << " " << i;
      ss_x += double{x[i]} * x[i];
      ss_y += double{fast[i]} * fast[i];
    }
    EXPECT_NEAR(ss_y, ss_x, 1e-5 * ss_x) << "block " << block;  // orthogonal: lengths kept
    // Normalized, the matrix is its own inverse.
    ops::hadamard_rows(fast.data(), rows, cols, block);
    for (size_t i = 0; i < x.size(); ++i) EXPECT_NEAR(fast[i], x[i], 1e-5f) << "block " << block << " " << i;
  }
  std::vector<float> one{1.f, 2.f, 3.f};
  ops::hadamard_rows(one.data(), 1, 3, 1);  // block 1: unchanged
  EXPECT_EQ(one, (std::vector<float>{1.f, 2.f, 3.f}));
  EXPECT_THROW(ops::hadamard_rows(one.data(), 1, 3, 2), InvalidInputError);
}

TEST(HadamardTest, RotatedRowsQuantizeAsTheReference) {
  // The CPU rotates by butterflies and scales the row's step afterwards, the reference by
  // the normalized matrix: the same codes but where a value lies within rounding of a
  // level's edge, the same scales to float rounding.
  const int64_t rows = 11, cols = 384, block = ops::hadamard_block(cols);
  const auto x = random_floats(static_cast<size_t>(rows * cols), 61, 3.f);
  std::vector<float> col(static_cast<size_t>(cols));
  for (int64_t c = 0; c < cols; ++c) col[static_cast<size_t>(c)] = 0.5f + 0.1f * static_cast<float>(c % 7);
  for (const int32_t code_max : {255, 127}) {  // 8-bit codes, and the 7-bit ones of CPUs without VNNI
    std::vector<uint8_t> q(x.size()), q_ref(x.size());
    std::vector<float> s(rows), s_ref(rows);
    std::vector<int32_t> z(rows), z_ref(rows);
    ops::cpu::quantize_rows_u8(q.data(), s.data(), z.data(), x.data(), rows, cols, col.data(), block,
                               code_max);
    ops::reference::quantize_rows_u8(q_ref.data(), s_ref.data(), z_ref.data(), x.data(), rows, cols,
                                     col.data(), block, code_max);
    int differing = 0;
    for (size_t i = 0; i < q.size(); ++i) {
      EXPECT_LE(std::abs(int{q[i]} - int{q_ref[i]}), 1) << i;
      EXPECT_LE(int{q[i]}, code_max) << i;
      differing += q[i] != q_ref[i];
    }
    EXPECT_LE(differing, 4) << code_max;
    for (int64_t r = 0; r < rows; ++r) {
      EXPECT_NEAR(s[static_cast<size_t>(r)], s_ref[static_cast<size_t>(r)],
                  1e-5f * s_ref[static_cast<size_t>(r)]);
      EXPECT_NEAR(z[static_cast<size_t>(r)], z_ref[static_cast<size_t>(r)], 1);
    }
  }
}

// The rotated quantizations (of a layer's inputs, and of int8's feed-forward rows between
// its two products) give exactly what their steps one after another give: the row (·
// column scales, or rescaled and activated), hadamard_row_unnormalized, quantize_rows_u8
// without a rotation, the scale times 1/sqrt(block). Every block from 8 to 128, widths of
// one block up to several, and widths of an odd number of 8-value blocks: a guard for any
// faster path (one fusing these passes measured no faster on a Zen 4 and was not kept).
TEST(HadamardTest, RotatedQuantizationsEqualTheirStepsInSequence) {
  for (const int64_t cols : {8, 24, 40, 48, 96, 160, 192, 384, 640, 1536}) {
    const int64_t rows = 5, block = ops::hadamard_block(cols);
    ASSERT_GT(block, 1) << cols;
    const float norm = static_cast<float>(1.0 / std::sqrt(static_cast<double>(block)));
    auto x = random_floats(static_cast<size_t>(rows * cols), 80 + static_cast<uint32_t>(cols), 2.f);
    x[3] = 40.f;  // an outlier channel
    std::vector<float> col(static_cast<size_t>(cols));
    for (int64_t c = 0; c < cols; ++c) col[static_cast<size_t>(c)] = 0.5f + 0.1f * static_cast<float>(c % 7);
    // What the steps in sequence give: the rows rotated, then quantized with no rotation.
    auto expect = [&](std::vector<float> rotated, const std::vector<uint8_t>& q, const std::vector<float>& s,
                      const std::vector<int32_t>& z, int32_t code_max, const char* what) {
      for (int64_t r = 0; r < rows; ++r)
        ops::cpu::hadamard_row_unnormalized(rotated.data() + r * cols, cols, block);
      std::vector<uint8_t> q_ref(q.size());
      std::vector<float> s_ref(rows);
      std::vector<int32_t> z_ref(rows);
      ops::cpu::quantize_rows_u8(q_ref.data(), s_ref.data(), z_ref.data(), rotated.data(), rows, cols,
                                 nullptr, 1, code_max);
      EXPECT_EQ(q, q_ref) << what << ", width " << cols << ", codes 0.." << code_max;
      for (int64_t r = 0; r < rows; ++r) {
        EXPECT_EQ(s[static_cast<size_t>(r)], s_ref[static_cast<size_t>(r)] * norm)
            << what << ", width " << cols;
        EXPECT_EQ(z[static_cast<size_t>(r)], z_ref[static_cast<size_t>(r)]) << what << ", width " << cols;
      }
    };
    for (const int32_t code_max : {255, 127}) {
      std::vector<uint8_t> q(x.size());
      std::vector<float> s(rows);
      std::vector<int32_t> z(rows);
      for (const bool scaled : {false, true}) {
        ops::cpu::quantize_rows_u8(q.data(), s.data(), z.data(), x.data(), rows, cols,
                                   scaled ? col.data() : nullptr, block, code_max);
        std::vector<float> scaled_x = x;
        if (scaled)
          for (size_t i = 0; i < x.size(); ++i) scaled_x[i] = x[i] * col[i % static_cast<size_t>(cols)];
        expect(scaled_x, q, s, z, code_max, scaled ? "inputs with column scales" : "inputs");
      }
      // Rescaled int32 sums, with and without bias, zero points and GELU.
      std::vector<int32_t> sums(x.size()), col_sum(static_cast<size_t>(cols));
      for (size_t i = 0; i < x.size(); ++i) sums[i] = static_cast<int32_t>(x[i] * 20000.f);
      for (int64_t c = 0; c < cols; ++c) col_sum[static_cast<size_t>(c)] = static_cast<int32_t>(c % 11) - 5;
      std::vector<float> row_scale(rows), bias(static_cast<size_t>(cols));
      std::vector<int32_t> row_zero(rows);
      for (int64_t r = 0; r < rows; ++r) {
        row_scale[static_cast<size_t>(r)] = 1e-4f * static_cast<float>(r + 1);
        row_zero[static_cast<size_t>(r)] = static_cast<int32_t>(r * 17);
      }
      for (int64_t c = 0; c < cols; ++c)
        bias[static_cast<size_t>(c)] = 0.01f * static_cast<float>(c % 13) - 0.05f;
      for (const auto act : {ops::Activation::None, ops::Activation::GeluErf})
        for (const bool with_bias : {false, true})
          for (const bool zero_points : {false, true}) {
            const int32_t* cs = zero_points ? col_sum.data() : nullptr;
            const float* b = with_bias ? bias.data() : nullptr;
            ops::cpu::dequantize_rows_u8(q.data(), s.data(), z.data(), sums.data(), row_scale.data(),
                                         row_zero.data(), col.data(), cs, b, rows, cols, act, block,
                                         code_max);
            std::vector<float> y(x.size());
            ops::cpu::dequantize_rows(y.data(), sums.data(), row_scale.data(), row_zero.data(), col.data(),
                                      cs, b, rows, cols, act);
            expect(y, q, s, z, code_max, "rescaled sums");
          }
    }
  }
}

// Inputs with a few channels 30x the rest (a trained norm's outliers) and weights with a
// few columns 10x the rest: unrotated, each row's 256 levels and each weight row's codes
// are set by those few; rotated, both spread over their blocks.
TEST(HadamardTest, RotationCutsTheErrorOfAnInt8ProductWithOutliers) {
  const int64_t m = 48, n = 80, k = 384;
  auto x = random_floats(static_cast<size_t>(m * k), 62, 1.f);
  auto w = random_floats(static_cast<size_t>(n * k), 63, 0.1f);
  for (int64_t r = 0; r < m; ++r)
    for (int64_t c = 0; c < k; c += 41) x[static_cast<size_t>(r * k + c)] *= 30.f;
  for (int64_t r = 0; r < n; ++r)
    for (int64_t c = 3; c < k; c += 53) w[static_cast<size_t>(r * k + c)] *= 10.f;
  std::vector<float> expected(static_cast<size_t>(m * n));
  ops::reference::gemm_f32(expected.data(), x.data(), w.data(), false, true, m, n, k, k, k, n, 1.f, 0.f);
  const Tensor xt = tensor_from(x, {m, k}), wt = tensor_from(w, {n, k});
  auto error = [&](const ops::Int8Weight& q) {
    Tensor y(DType::F32, {m, n});
    ops::matmul_nt_int8(y, xt, q);
    return relative_rms_error(y, expected);
  };
  const ops::Int8Weight plain = ops::quantize_weight_int8(wt, false, nullptr, nullptr, /*rotate=*/false);
  const ops::Int8Weight rotated = ops::quantize_weight_int8(wt, false);
  const ops::Int8Weight rotated_packed = ops::quantize_weight_int8(wt, true);
  EXPECT_EQ(plain.rotation_block, 1);
  EXPECT_EQ(rotated.rotation_block, 128);
  const double plain_error = error(plain), rotated_error = error(rotated);
  std::printf(
      "outliers, codes up to %d (inputs), %d (weights): relative RMS error %.5f unrotated, %.5f rotated\n",
      ops::int8_activation_max(), ops::int8_weight_max(), plain_error, rotated_error);
  EXPECT_LT(rotated_error, 0.5 * plain_error);
  EXPECT_EQ(error(rotated_packed), rotated_error);
}

// Two int8 products in a row: the hidden rows between them are rotated for the second as
// its own input would be, the same bits as the two products one after the other.
TEST(HadamardTest, ChainRotatesTheHiddenRowsAsTheSecondProductExpects) {
  const int64_t m = 9, n1 = 256, n2 = 40, k = 96;
  const auto x = random_floats(static_cast<size_t>(m * k), 64, 1.f);
  const Tensor w1 = tensor_from(random_floats(static_cast<size_t>(n1 * k), 65, 0.2f), {n1, k});
  const Tensor w2 = tensor_from(random_floats(static_cast<size_t>(n2 * n1), 66, 0.1f), {n2, n1});
  for (const bool pack : {false, true}) {
    const ops::Int8Weight q1 = ops::quantize_weight_int8(w1, pack), q2 = ops::quantize_weight_int8(w2, pack);
    ASSERT_EQ(q1.rotation_block, 32);
    ASSERT_EQ(q2.rotation_block, 128);
    const Tensor xt = tensor_from(x, {m, k});
    Tensor hidden(DType::F32, {m, n1}), two_steps(DType::F32, {m, n2}), chained(DType::F32, {m, n2});
    ops::matmul_nt_int8(hidden, xt, q1, nullptr, ops::Activation::GeluErf);
    ops::matmul_nt_int8(two_steps, hidden, q2);
    ops::matmul_nt_int8_chain(chained, xt, q1, nullptr, ops::Activation::GeluErf, q2, nullptr);
    for (int64_t i = 0; i < m * n2; ++i)
      EXPECT_EQ(chained.data<float>()[i], two_steps.data<float>()[i]) << (pack ? "packed " : "plain ") << i;
  }
}

}  // namespace nle::test
