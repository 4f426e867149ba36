// Every optimised CPU kernel against its plain reference implementation, over
// shapes that are not multiples of any vector width. The printed max difference
// makes a regression visible even when it stays within tolerance.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>

#include "core/half.h"
#include "ops/activation.h"
#include "ops/attention.h"
#include "ops/cpu/attention_tiles_bf16.h"
#include "ops/cpu/vector_math.h"
#include "ops/embedding.h"
#include "ops/gemm.h"
#include "ops/layer_norm.h"
#include "ops/softmax.h"
#include "test_utils.h"

namespace nle::test {

struct GemmCase {
  int64_t m, n, k;
  bool trans_a, trans_b;
  float alpha, beta;
};

class GemmTest : public ::testing::TestWithParam<GemmCase> {};

TEST_P(GemmTest, MatchesReference) {
  const GemmCase p = GetParam();
  const int64_t lda = p.trans_a ? p.m : p.k, ldb = p.trans_b ? p.k : p.n, ldc = p.n;
  const auto a = random_floats(static_cast<size_t>(p.m * p.k), 1);
  const auto b = random_floats(static_cast<size_t>(p.k * p.n), 2);
  auto c = random_floats(static_cast<size_t>(p.m * p.n), 3);
  auto expected = c;
  ops::cpu::gemm_f32(c.data(), a.data(), b.data(), p.trans_a, p.trans_b, p.m, p.n, p.k, lda, ldb, ldc,
                     p.alpha, p.beta);
  ops::reference::gemm_f32(expected.data(), a.data(), b.data(), p.trans_a, p.trans_b, p.m, p.n, p.k,
                           lda, ldb, ldc, p.alpha, p.beta);
  const float diff = max_abs_diff(c, expected);
  std::printf("gemm %lldx%lldx%lld max diff %g\n", (long long)p.m, (long long)p.n, (long long)p.k, diff);
  EXPECT_LT(diff, 1e-4f * std::sqrt(static_cast<float>(p.k)));
}

INSTANTIATE_TEST_SUITE_P(Shapes, GemmTest,
                         ::testing::Values(GemmCase{1, 1, 1, false, false, 1.f, 0.f},
                                           GemmCase{7, 13, 29, false, true, 1.f, 0.f},
                                           GemmCase{33, 40, 72, false, true, 0.5f, 1.f},
                                           GemmCase{64, 120, 40, true, false, 1.f, 0.f},
                                           GemmCase{17, 5, 130, true, true, 2.f, 0.25f}),
                         [](const auto& info) {
                           const GemmCase& p = info.param;
                           return "m" + std::to_string(p.m) + "n" + std::to_string(p.n) + "k" +
                                  std::to_string(p.k) + (p.trans_a ? "_ta" : "") + (p.trans_b ? "_tb" : "");
                         });

TEST(GemmTest, MatmulRejectsMismatchedShapes) {
  Tensor a(DType::F32, {4, 5}), b(DType::F32, {3, 6}), c(DType::F32, {4, 3});
  EXPECT_THROW(ops::matmul_nt(c, a, b), InvalidInputError);
}

class ActivationTest : public ::testing::TestWithParam<ops::Activation> {};

TEST_P(ActivationTest, MatchesReference) {
  const int64_t rows = 37, cols = 91;
  auto x = random_floats(static_cast<size_t>(rows * cols), 4, 3.f);
  const auto bias = random_floats(static_cast<size_t>(cols), 5);
  auto expected = x;
  ops::cpu::bias_activation_f32(x.data(), bias.data(), rows, cols, GetParam());
  ops::reference::bias_activation_f32(expected.data(), bias.data(), rows, cols, GetParam());
  const float diff = max_abs_diff(x, expected);
  std::printf("activation %s max diff %g\n", ops::activation_name(GetParam()), diff);
  EXPECT_LT(diff, 1e-5f);
}

INSTANTIATE_TEST_SUITE_P(All, ActivationTest,
                         ::testing::Values(ops::Activation::None, ops::Activation::GeluErf,
                                           ops::Activation::GeluTanh, ops::Activation::QuickGelu,
                                           ops::Activation::Relu, ops::Activation::Silu,
                                           ops::Activation::Tanh),
                         [](const auto& info) { return std::string(ops::activation_name(info.param)); });

// GELU as the kernels compute it (the AVX-512 table of avx512_rows.h where the CPU runs
// AVX-512: 4.9e-7 seen; erf_f32's rational elsewhere: 8.1e-7) against a float64 GELU, past
// the table's end, at every value of a fine grid, far out (where x/2 (1 + erf(x/√2)) had
// given GELU(-1e30) = -3e22), and at the special values.
TEST(VectorMathTest, GeluErfWithin1e6AndSpecialValues) {
  std::vector<float> x;
  for (double v = -12.0; v <= 12.0; v += 0.000731) x.push_back(static_cast<float>(v));
  for (float v : {0.f, -0.f, 5.5f, -5.5f, 5.4999f, 5.5001f, 1e-30f, -1e-30f, 1e30f, -1e30f}) x.push_back(v);
  auto y = x;
  ops::cpu::activate_f32(y.data(), static_cast<int64_t>(y.size()), ops::Activation::GeluErf);
  double worst = 0.0;
  for (size_t i = 0; i < x.size(); ++i) {
    const double v = x[i];
    worst = std::max(worst, std::fabs(y[i] - 0.5 * v * std::erfc(-v / std::sqrt(2.0))));
  }
  std::printf("GELU (erf) max abs error %g over %zu values\n", worst, x.size());
  EXPECT_LT(worst, 1e-6);
  const float inf = std::numeric_limits<float>::infinity();
  std::vector<float> special{inf, -inf, std::numeric_limits<float>::quiet_NaN(), 0.f};
  ops::cpu::activate_f32(special.data(), 4, ops::Activation::GeluErf);
  EXPECT_EQ(special[0], inf);
  EXPECT_LE(std::fabs(special[1]), 1e-6f) << special[1];
  EXPECT_TRUE(std::isnan(special[2]));
  EXPECT_EQ(special[3], 0.f);
}

TEST(VectorMathTest, ExpIsWithinTwoUlpAndErfWithin5e7) {
  double worst_exp = 0.0, worst_erf = 0.0;
  for (double v = -87.3; v <= 88.0; v += 0.0137) {
    const float x = static_cast<float>(v);
    const double expected = std::exp(static_cast<double>(x));
    worst_exp = std::max(worst_exp, std::fabs(ops::cpu::exp_f32(x) - expected) / expected);
  }
  for (double v = -12.0; v <= 12.0; v += 0.0011) {
    const float x = static_cast<float>(v);
    worst_erf = std::max(worst_erf, std::fabs(ops::cpu::erf_f32(x) - std::erf(static_cast<double>(x))));
  }
  std::printf("exp max relative error %g, erf max abs error %g\n", worst_exp, worst_erf);
  EXPECT_LT(worst_exp, 2.5e-7);  // 2 ulp is 2.4e-7
  EXPECT_LT(worst_erf, 5e-7);    // the fit's 4.5e-8 plus float rounding (3.2e-7 seen)
  // Below exp's range (and at -inf, as softmax's masked scores) the result is 0.
  EXPECT_EQ(ops::cpu::exp_f32(-87.5f), 0.f);
  EXPECT_EQ(ops::cpu::exp_f32(-std::numeric_limits<float>::infinity()), 0.f);
  EXPECT_EQ(ops::cpu::exp_f32(0.f), 1.f);
  EXPECT_EQ(ops::cpu::erf_f32(0.f), 0.f);
  // The softmax's exp of x <= 0: exp_f32's value bit for bit from -87.3 to 0, 0 at the far end.
  for (double v = -87.3; v <= 0.0; v += 0.00731) {
    const float x = static_cast<float>(v);
    ASSERT_EQ(ops::cpu::exp_nonpositive_f32(x), ops::cpu::exp_f32(x)) << x;
  }
  EXPECT_EQ(ops::cpu::exp_nonpositive_f32(-0.f), 1.f);
  EXPECT_LE(ops::cpu::exp_nonpositive_f32(-87.6f), 1.2e-38f);
  EXPECT_EQ(ops::cpu::exp_nonpositive_f32(-88.1f), 0.f);
  EXPECT_EQ(ops::cpu::exp_nonpositive_f32(-std::numeric_limits<float>::infinity()), 0.f);
}

TEST(ActivationTest, ParsesHuggingFaceNames) {
  ops::Activation act;
  ASSERT_TRUE(ops::activation_from_name("gelu", &act));
  EXPECT_EQ(act, ops::Activation::GeluErf);
  ASSERT_TRUE(ops::activation_from_name("gelu_new", &act));
  EXPECT_EQ(act, ops::Activation::GeluTanh);
  EXPECT_FALSE(ops::activation_from_name("gelu_but_made_up", &act));
}

// Widths of whole steps of 64 (AVX-512's four chains), of 16 with a masked rest, and both.
TEST(LayerNormTest, MatchesReferenceWithAndWithoutResidual) {
  const int64_t rows = 19;
  for (const int64_t cols : {40, 384, 200, 7}) {
    const auto x = random_floats(static_cast<size_t>(rows * cols), 6, 2.f);
    const auto residual = random_floats(static_cast<size_t>(rows * cols), 7);
    const auto gamma = random_floats(static_cast<size_t>(cols), 8);
    const auto beta = random_floats(static_cast<size_t>(cols), 9);
    for (const bool with_residual : {false, true}) {
      std::vector<float> y(x.size()), expected(x.size());
      const float* r = with_residual ? residual.data() : nullptr;
      ops::cpu::layer_norm_f32(y.data(), x.data(), r, gamma.data(), beta.data(), rows, cols, 1e-5f);
      ops::reference::layer_norm_f32(expected.data(), x.data(), r, gamma.data(), beta.data(), rows, cols,
                                     1e-5f);
      const float diff = max_abs_diff(y, expected);
      std::printf("layer_norm cols=%lld residual=%d max diff %g\n", static_cast<long long>(cols),
                  with_residual, diff);
      EXPECT_LT(diff, 1e-5f) << cols;
    }
  }
}

TEST(LayerNormTest, InPlaceWithResidualAliasingOutput) {
  const int64_t rows = 3, cols = 8;
  const auto x = random_floats(static_cast<size_t>(rows * cols), 10);
  auto y = random_floats(static_cast<size_t>(rows * cols), 11);  // also the residual
  std::vector<float> gamma(cols, 1.f), beta(cols, 0.f), expected(x.size());
  ops::reference::layer_norm_f32(expected.data(), x.data(), y.data(), gamma.data(), beta.data(), rows,
                                 cols, 1e-12f);
  ops::cpu::layer_norm_f32(y.data(), x.data(), y.data(), gamma.data(), beta.data(), rows, cols, 1e-12f);
  EXPECT_LT(max_abs_diff(y, expected), 1e-5f);
}

// The bf16 compute type's norms also write their outputs rounded for the bf16 products that
// take them: the float32 output as without the copy, the copy exactly that output rounded.
TEST(LayerNormTest, WritesTheOutputRoundedToBf16) {
  const int64_t rows = 7;
  for (const int64_t cols : {40, 384, 200}) {
    const auto x = random_floats(static_cast<size_t>(rows * cols), 12, 3.f);
    const auto residual = random_floats(static_cast<size_t>(rows * cols), 13);
    const auto gamma = random_floats(static_cast<size_t>(cols), 14);
    const auto beta = random_floats(static_cast<size_t>(cols), 15);
    Tensor xt = tensor_from(x, {rows, cols}), rt = tensor_from(residual, {rows, cols});
    Tensor gt = tensor_from(gamma, {cols}), bt = tensor_from(beta, {cols});
    Tensor plain(DType::F32, {rows, cols}), y(DType::F32, {rows, cols}), rounded(DType::BF16, {rows, cols});
    ops::layer_norm(plain, xt, &rt, gt, bt, 1e-12f);
    ops::layer_norm(y, xt, &rt, gt, bt, 1e-12f, &rounded);
    for (int64_t i = 0; i < rows * cols; ++i) {
      ASSERT_EQ(y.data<float>()[i], plain.data<float>()[i]) << i;
      ASSERT_EQ(rounded.data<uint16_t>()[i], float_to_bf16_bits(y.data<float>()[i])) << i;
    }
    Tensor wrong(DType::BF16, {rows, cols + 1});
    EXPECT_THROW(ops::layer_norm(y, xt, &rt, gt, bt, 1e-12f, &wrong), InvalidInputError);
  }
}

// A NaN in a row makes the row NaN, and its bf16 copy the quiet NaN float_to_bf16_bits gives.
TEST(LayerNormTest, RoundsANaNRowAsFloatToBf16Bits) {
  const int64_t cols = 384;
  auto x = random_floats(static_cast<size_t>(cols), 16);
  x[5] = std::numeric_limits<float>::quiet_NaN();
  const std::vector<float> gamma(cols, 1.f), beta(cols, 0.f);
  std::vector<float> y(x.size());
  std::vector<uint16_t> rounded(x.size());
  ops::cpu::layer_norm_f32(y.data(), x.data(), nullptr, gamma.data(), beta.data(), 1, cols, 1e-12f,
                           rounded.data());
  for (int64_t i = 0; i < cols; ++i) {
    ASSERT_TRUE(std::isnan(y[i])) << i;
    ASSERT_EQ(rounded[i], float_to_bf16_bits(y[i])) << i;
  }
}

TEST(SoftmaxTest, MatchesReferenceWithBroadcastMask) {
  const int64_t batch = 3, heads = 2, queries = 5, keys = 7;
  const int64_t rows = batch * heads * queries;
  const auto x = random_floats(static_cast<size_t>(rows * keys), 12, 4.f);
  std::vector<uint8_t> mask(static_cast<size_t>(batch * keys), 1);
  for (int64_t k = 4; k < keys; ++k) mask[1 * keys + k] = 0;  // sequence 1 has 4 keys
  for (int64_t k = 0; k < keys; ++k) mask[2 * keys + k] = 0;  // sequence 2 has none
  std::vector<float> y(x.size()), expected(x.size());
  ops::cpu::softmax_f32(y.data(), x.data(), mask.data(), rows, keys, heads * queries);
  ops::reference::softmax_f32(expected.data(), x.data(), mask.data(), rows, keys, heads * queries);
  EXPECT_LT(max_abs_diff(y, expected), 1e-6f);
  // Masked keys get exactly zero, a fully masked row is all zeros, others sum to 1.
  const int64_t row_of_seq1 = 1 * heads * queries;
  for (int64_t k = 4; k < keys; ++k) EXPECT_EQ(y[row_of_seq1 * keys + k], 0.f);
  for (int64_t k = 0; k < keys; ++k) EXPECT_EQ(y[(rows - 1) * keys + k], 0.f);
  float sum = 0.f;
  for (int64_t k = 0; k < keys; ++k) sum += y[k];
  EXPECT_NEAR(sum, 1.f, 1e-6f);
}

TEST(SoftmaxTest, UnmaskedMatchesReference) {
  const int64_t rows = 11, cols = 130;
  const auto x = random_floats(static_cast<size_t>(rows * cols), 13, 5.f);
  std::vector<float> y(x.size()), expected(x.size());
  ops::cpu::softmax_f32(y.data(), x.data(), nullptr, rows, cols, 1);
  ops::reference::softmax_f32(expected.data(), x.data(), nullptr, rows, cols, 1);
  EXPECT_LT(max_abs_diff(y, expected), 1e-6f);
}

// The block form used by attention: unnormalised exponentials and each row's 1 / sum, which
// times the row give the reference softmax (rows of 1 to 130 keys, and -inf scores).
TEST(SoftmaxTest, UnnormalizedRowsTimesInverseSumMatchReference) {
  for (int64_t cols : {1, 7, 16, 130}) {
    const int64_t rows = 9;
    auto x = random_floats(static_cast<size_t>(rows * cols), 17 + static_cast<uint32_t>(cols), 30.f);
    if (cols > 1) x[3] = -std::numeric_limits<float>::infinity();  // a masked score in row 0
    std::vector<float> expected(x.size()), inv_sum(static_cast<size_t>(rows));
    ops::reference::softmax_f32(expected.data(), x.data(), nullptr, rows, cols, 1);
    ops::cpu::softmax_rows_unnormalized_f32(x.data(), inv_sum.data(), rows, cols);
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t c = 0; c < cols; ++c)
        x[static_cast<size_t>(r * cols + c)] *= inv_sum[static_cast<size_t>(r)];
    EXPECT_LT(max_abs_diff(x, expected), 1e-6f) << cols << " keys";
    if (cols > 1) {
      EXPECT_EQ(x[3], 0.f);
    }
  }
}

TEST(EmbeddingTest, GathersAndAccumulates) {
  const int64_t vocab = 10, dim = 6;
  const auto table = random_floats(static_cast<size_t>(vocab * dim), 14);
  const std::vector<int64_t> ids = {3, 0, 9, 3};
  auto y = random_floats(ids.size() * dim, 15);
  auto expected = y;
  ops::cpu::embedding_f32(y.data(), table.data(), ids.data(), 4, dim, true);
  ops::reference::embedding_f32(expected.data(), table.data(), ids.data(), 4, dim, true);
  EXPECT_EQ(max_abs_diff(y, expected), 0.f);
  ops::cpu::embedding_f32(y.data(), table.data(), ids.data(), 4, dim, false);
  for (int64_t c = 0; c < dim; ++c) EXPECT_EQ(y[2 * dim + c], table[9 * dim + c]);
}

TEST(EmbeddingTest, RejectsOutOfRangeIdsWithTheirName) {
  Tensor table(DType::F32, {10, 4}), y(DType::F32, {2, 4});
  const std::vector<int64_t> ids = {1, 10};
  try {
    ops::embedding(y, table, ids.data(), 2, false, "input_ids");
    FAIL() << "expected InvalidInputError";
  } catch (const InvalidInputError& e) {
    EXPECT_NE(std::string(e.what()).find("input_ids value 10"), std::string::npos) << e.what();
  }
  const std::vector<int64_t> negative = {-1, 0};
  EXPECT_THROW(ops::embedding(y, table, negative.data(), 2, false, "input_ids"), InvalidInputError);
}

struct AttentionCase {
  std::vector<int64_t> lengths;
  int64_t heads, head_dim;
};

class AttentionTest : public ::testing::TestWithParam<AttentionCase> {};

TEST_P(AttentionTest, MatchesReference) {
  const AttentionCase p = GetParam();
  std::vector<int64_t> offsets = {0};
  for (int64_t len : p.lengths) offsets.push_back(offsets.back() + len);
  const int64_t tokens = offsets.back(), width = p.heads * p.head_dim, ld = 3 * width;
  const auto qkv = random_floats(static_cast<size_t>(tokens * ld), 16, 2.f);
  std::vector<float> out(static_cast<size_t>(tokens * width)), expected(out.size());
  const float scale = 1.f / std::sqrt(static_cast<float>(p.head_dim));
  const int64_t seqs = static_cast<int64_t>(p.lengths.size());
  ops::cpu::packed_self_attention_f32(out.data(), qkv.data(), qkv.data() + width, qkv.data() + 2 * width,
                                      offsets.data(), seqs, p.heads, p.head_dim, ld, width, scale);
  ops::reference::packed_self_attention_f32(expected.data(), qkv.data(), qkv.data() + width,
                                            qkv.data() + 2 * width, offsets.data(), seqs, p.heads,
                                            p.head_dim, ld, width, scale);
  const float diff = max_abs_diff(out, expected);
  std::printf("attention %zu seqs max diff %g\n", p.lengths.size(), diff);
  // Float32 sums over up to 130 keys with an exp within 2 ulp (ops/cpu/vector_math.h); the
  // summation order of the GEMM library's products depends on the kernel it picks for the CPU
  // (1.03e-5 seen on one machine, under 1e-5 on others). The model-level parity tests hold 1e-4 against transformers.
  EXPECT_LT(diff, 3e-5f);
}

// A bf16 output projection takes the results rounded as they are written: exactly the
// float32 results rounded to nearest even (tiles and GEMM library alike).
TEST_P(AttentionTest, WritesResultsRoundedToBf16) {
  const AttentionCase p = GetParam();
  std::vector<int64_t> offsets = {0};
  for (int64_t len : p.lengths) offsets.push_back(offsets.back() + len);
  const int64_t tokens = offsets.back(), width = p.heads * p.head_dim, ld = 3 * width;
  const auto qkv = random_floats(static_cast<size_t>(tokens * ld), 18, 2.f);
  Tensor out(DType::F32, {tokens, width}), rounded(DType::BF16, {tokens, width});
  const float scale = 1.f / std::sqrt(static_cast<float>(p.head_dim));
  ops::packed_self_attention(out, qkv.data(), qkv.data() + width, qkv.data() + 2 * width, ld, offsets,
                             p.heads, p.head_dim, scale);
  ops::packed_self_attention(rounded, qkv.data(), qkv.data() + width, qkv.data() + 2 * width, ld, offsets,
                             p.heads, p.head_dim, scale);
  for (int64_t i = 0; i < tokens * width; ++i)
    ASSERT_EQ(rounded.data<uint16_t>()[i], float_to_bf16_bits(out.data<float>()[i])) << "element " << i;
}

// Each head's results land in its own columns only: one head written into rows wider than
// it (float32 and rounded to bf16), the columns after it left as they were.
TEST_P(AttentionTest, LeavesTheColumnsAfterItsHeadAlone) {
  const AttentionCase p = GetParam();
  std::vector<int64_t> offsets = {0};
  for (int64_t len : p.lengths) offsets.push_back(offsets.back() + len);
  const int64_t tokens = offsets.back(), d = p.head_dim, ld = 3 * d, ld_out = d + 9;
  const auto qkv = random_floats(static_cast<size_t>(tokens * ld), 19, 2.f);
  const float scale = 1.f / std::sqrt(static_cast<float>(d));
  const int64_t seqs = static_cast<int64_t>(p.lengths.size());
  std::vector<float> out(static_cast<size_t>(tokens * ld_out), 7.f);
  std::vector<uint16_t> rounded(out.size(), 0x1234);
  ops::cpu::packed_self_attention_f32(out.data(), qkv.data(), qkv.data() + d, qkv.data() + 2 * d,
                                      offsets.data(), seqs, 1, d, ld, ld_out, scale);
  ops::cpu::packed_self_attention_f32(rounded.data(), qkv.data(), qkv.data() + d, qkv.data() + 2 * d,
                                      offsets.data(), seqs, 1, d, ld, ld_out, scale);
  for (int64_t r = 0; r < tokens; ++r)
    for (int64_t c = d; c < ld_out; ++c) {
      ASSERT_EQ(out[r * ld_out + c], 7.f) << "row " << r << " column " << c;
      ASSERT_EQ(rounded[r * ld_out + c], 0x1234) << "row " << r << " column " << c;
    }
}

INSTANTIATE_TEST_SUITE_P(Shapes, AttentionTest,
                         ::testing::Values(AttentionCase{{1}, 1, 4}, AttentionCase{{3, 7, 12, 17}, 5, 8},
                                           AttentionCase{{130, 2}, 12, 32},
                                           // Head widths the register tiles take (multiples of
                                           // 8: 16 columns at a time, then 8), lengths around
                                           // their 6-row and 8-key steps.
                                           AttentionCase{{1, 6, 8, 9, 16, 23, 77}, 2, 64},
                                           AttentionCase{{5, 13, 40}, 3, 24},
                                           // Widths that are not: the copies padded to a
                                           // multiple of 8, the last vector stored in part
                                           // (TinyBERT's 312 / 12 = 26).
                                           AttentionCase{{5, 0, 9}, 3, 13},
                                           AttentionCase{{1, 6, 7, 13, 40, 130}, 2, 26},
                                           AttentionCase{{3, 9}, 2, 3}),
                         [](const auto& info) {
                           std::string name = "h" + std::to_string(info.param.heads) + "d" +
                                              std::to_string(info.param.head_dim) + "_len";
                           for (int64_t len : info.param.lengths) name += "_" + std::to_string(len);
                           return name;
                         });

// The bf16 compute type's attention (ops/cpu/attention_tiles_bf16.h) on bf16 queries, keys
// and values against the reference on the same numbers as floats: what is left is the
// rounding of the unnormalised probabilities (to nearest: at most 2^-8 of each, so of each
// result at most 2^-8 of the largest |value|, 3e-2 for these values of standard deviation
// 2; the errors' signs vary, and 4.5-5.9e-3 is seen on an AMD EPYC: the kernel's sums run
// in the same order on every CPU that takes it; AMX's products, 5.2-6.3e-3 on a Sapphire
// Rapids, sum in another) and the order of the float32 sums. Where
// the CPU has no AVX512-BF16 it refuses with an error instead.
class Bf16AttentionTest : public ::testing::TestWithParam<AttentionCase> {};

uint16_t bf16_bits(float x) {  // rounded to nearest even
  uint32_t bits;
  std::memcpy(&bits, &x, sizeof bits);
  return static_cast<uint16_t>((bits + 0x7fffu + ((bits >> 16) & 1u)) >> 16);
}

float bf16_value(uint16_t b) {
  const uint32_t bits = static_cast<uint32_t>(b) << 16;
  float x;
  std::memcpy(&x, &bits, sizeof x);
  return x;
}

TEST_P(Bf16AttentionTest, MatchesReferenceOnTheSameNumbers) {
  const AttentionCase p = GetParam();
  std::vector<int64_t> offsets = {0};
  for (int64_t len : p.lengths) offsets.push_back(offsets.back() + len);
  const int64_t tokens = offsets.back(), width = p.heads * p.head_dim, ld = 3 * width;
  const auto qkv = random_floats(static_cast<size_t>(tokens * ld), 17, 2.f);
  std::vector<uint16_t> bits(qkv.size());
  std::vector<float> rounded(qkv.size());
  for (size_t i = 0; i < qkv.size(); ++i) rounded[i] = bf16_value(bits[i] = bf16_bits(qkv[i]));
  Tensor out(DType::F32, {tokens, width});
  const float scale = 1.f / std::sqrt(static_cast<float>(p.head_dim));
  if (!ops::bf16_attention_available(p.head_dim)) {
    EXPECT_THROW(
        ops::packed_self_attention_bf16(out, bits.data(), bits.data() + width, bits.data() + 2 * width, ld,
                                        offsets, p.heads, p.head_dim, scale),
        Error);
    std::printf("bf16 attention not on this CPU: refused\n");
    return;
  }
  // Where the CPU has AMX, its products and the AVX512-BF16 ones (the path of CPUs without).
  for (const bool amx : {true, false}) {
    ops::cpu::allow_bf16_attention_amx(amx);
    const bool took_amx = ops::cpu::bf16_attention_takes_amx(p.head_dim);
    if (amx && !took_amx) {
      std::printf("no AMX products here (CPU or head width)\n");
      continue;
    }
    ops::packed_self_attention_bf16(out, bits.data(), bits.data() + width, bits.data() + 2 * width, ld,
                                    offsets, p.heads, p.head_dim, scale);
    std::vector<float> expected(static_cast<size_t>(tokens * width));
    ops::reference::packed_self_attention_f32(
        expected.data(), rounded.data(), rounded.data() + width, rounded.data() + 2 * width, offsets.data(),
        static_cast<int64_t>(p.lengths.size()), p.heads, p.head_dim, ld, width, scale);
    const std::vector<float> got(out.data<float>(), out.data<float>() + expected.size());
    const float diff = max_abs_diff(got, expected);
    std::printf("bf16 attention (%s) %zu seqs max diff %g\n", took_amx ? "AMX" : "AVX512-BF16",
                p.lengths.size(), diff);
    EXPECT_LT(diff, 8e-3f);
    // Results for a bf16 product, rounded as they are written: the float32 ones rounded (none
    // of these is a denormal, which the kernel's rounding would take as 0).
    Tensor rounded_out(DType::BF16, {tokens, width});
    ops::packed_self_attention_bf16(rounded_out, bits.data(), bits.data() + width, bits.data() + 2 * width,
                                    ld, offsets, p.heads, p.head_dim, scale);
    for (int64_t i = 0; i < tokens * width; ++i)
      ASSERT_EQ(rounded_out.data<uint16_t>()[i], float_to_bf16_bits(got[static_cast<size_t>(i)])) << i;
  }
  ops::cpu::allow_bf16_attention_amx(true);
}

INSTANTIATE_TEST_SUITE_P(Shapes, Bf16AttentionTest,
                         // Lengths around the tiles' 6-row, 2-key and 16-key steps; 16 and 32
                         // columns at a time. AMX: 16-row tiles, steps of 32 keys, 64 columns
                         // (4 result tiles) a pass, and from 160 keys on blocks of 32 rows (a
                         // last block of 1, 16 and 22 rows); 48 wide stays on AVX512-BF16.
                         ::testing::Values(AttentionCase{{1, 2, 6, 7, 16, 17, 33, 77}, 2, 32},
                                           AttentionCase{{161, 176, 182}, 2, 32},
                                           AttentionCase{{5, 31, 130}, 3, 64}, AttentionCase{{9, 40}, 2, 48},
                                           AttentionCase{{15, 32, 47, 64, 65}, 2, 128}),
                         [](const auto& info) {
                           std::string name = "h" + std::to_string(info.param.heads) + "d" +
                                              std::to_string(info.param.head_dim) + "_len";
                           for (int64_t len : info.param.lengths) name += "_" + std::to_string(len);
                           return name;
                         });

// The bf16 tiles fold a positive scale into the exponent after finding the largest raw
// score; a scale of 0 or below (no model's, but the interface takes any) is applied to the
// scores first. Against the reference with AMX's products and AVX512-BF16's.
TEST(Bf16AttentionScaleTest, ZeroAndNegativeScalesMatchReference) {
  const std::vector<int64_t> offsets = {0, 7, 40, 41};
  const int64_t heads = 2, head_dim = 32, width = heads * head_dim, ld = 3 * width, tokens = offsets.back();
  if (!ops::bf16_attention_available(head_dim)) {
    std::printf("bf16 attention not on this CPU: nothing to compare\n");
    return;
  }
  const auto qkv = random_floats(static_cast<size_t>(tokens * ld), 23, 2.f);
  std::vector<uint16_t> bits(qkv.size());
  std::vector<float> rounded(qkv.size());
  for (size_t i = 0; i < qkv.size(); ++i) rounded[i] = bf16_value(bits[i] = bf16_bits(qkv[i]));
  for (const bool amx : {true, false}) {
    ops::cpu::allow_bf16_attention_amx(amx);
    if (amx && !ops::cpu::bf16_attention_takes_amx(head_dim)) continue;
    for (const float scale : {0.f, -0.2f, 0.2f}) {
      Tensor out(DType::F32, {tokens, width});
      ops::packed_self_attention_bf16(out, bits.data(), bits.data() + width, bits.data() + 2 * width, ld,
                                      offsets, heads, head_dim, scale);
      std::vector<float> expected(static_cast<size_t>(tokens * width));
      ops::reference::packed_self_attention_f32(expected.data(), rounded.data(), rounded.data() + width,
                                                rounded.data() + 2 * width, offsets.data(), 3, heads,
                                                head_dim, ld, width, scale);
      const std::vector<float> got(out.data<float>(), out.data<float>() + expected.size());
      EXPECT_LT(max_abs_diff(got, expected), 8e-3f) << (amx ? "AMX" : "AVX512-BF16") << " scale " << scale;
    }
  }
  ops::cpu::allow_bf16_attention_amx(true);
}

// int8-mixed projects the values apart from the fused query/key product: v has its own
// row stride (ld_v). Against the reference on the same numbers laid out as one fused buffer.
TEST(AttentionTest, ValuesWithTheirOwnRowStride) {
  const std::vector<int64_t> offsets = {0, 3, 20, 21};
  const int64_t heads = 3, head_dim = 8, width = heads * head_dim, tokens = offsets.back();
  const auto qk = random_floats(static_cast<size_t>(tokens * 2 * width), 21, 2.f);
  const auto v = random_floats(static_cast<size_t>(tokens * width), 22, 2.f);
  std::vector<float> qkv(static_cast<size_t>(tokens * 3 * width));
  for (int64_t t = 0; t < tokens; ++t) {
    std::copy(qk.begin() + t * 2 * width, qk.begin() + (t + 1) * 2 * width, qkv.begin() + t * 3 * width);
    std::copy(v.begin() + t * width, v.begin() + (t + 1) * width, qkv.begin() + t * 3 * width + 2 * width);
  }
  Tensor out(DType::F32, {tokens, width});
  ops::packed_self_attention(out, qk.data(), qk.data() + width, v.data(), 2 * width, offsets, heads, head_dim,
                             0.3f, nullptr, width);
  std::vector<float> expected(static_cast<size_t>(tokens * width));
  ops::reference::packed_self_attention_f32(expected.data(), qkv.data(), qkv.data() + width, qkv.data() + 2 * width,
                                            offsets.data(), 3, heads, head_dim, 3 * width, width, 0.3f);
  const std::vector<float> got(out.data<float>(), out.data<float>() + tokens * width);
  EXPECT_LT(max_abs_diff(got, expected), 3e-5f);
}

TEST(AttentionTest, RejectsOffsetsThatDoNotCoverTheTokens) {
  Tensor out(DType::F32, {5, 8});
  std::vector<float> qkv(5 * 24);
  EXPECT_THROW(ops::packed_self_attention(out, qkv.data(), qkv.data() + 8, qkv.data() + 16, 24, {0, 3},
                                          2, 4, 0.5f),
               InvalidInputError);
}

}  // namespace nle::test
