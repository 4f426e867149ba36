// The kernels and pieces the encoder-decoder runtime adds: RMS norm, attention
// with a relative position bias, attention over gathered (cached) key rows,
// the KV cache's history-based beam reordering, T5's distance buckets and the row
// reductions of a decoding step.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>

#include "core/half.h"
#include "generate/kv_cache.h"
#include "generate/logits_processors.h"
#include "ops/attention.h"
#include "ops/cpu/attention_tiles_bf16.h"
#include "ops/float16.h"
#include "ops/int8_rows.h"
#include "ops/rms_norm.h"
#include "test_utils.h"

namespace nle::test {

TEST(RmsNormTest, MatchesReference) {
  for (int64_t cols : {1, 7, 40, 515}) {
    const int64_t rows = 33;
    const auto x = random_floats(static_cast<size_t>(rows * cols), 21, 3.f);
    const auto w = random_floats(static_cast<size_t>(cols), 22);
    std::vector<float> y(x.size()), expected(x.size());
    ops::cpu::rms_norm_f32(y.data(), x.data(), w.data(), rows, cols, 1e-6f);
    ops::reference::rms_norm_f32(expected.data(), x.data(), w.data(), rows, cols, 1e-6f);
    EXPECT_LT(max_abs_diff(y, expected), 1e-5f) << "cols " << cols;
  }
}

TEST(AttentionTest, RelativeBiasMatchesReference) {
  const std::vector<int64_t> offsets = {0, 5, 16, 17};
  const int64_t heads = 3, head_dim = 8, width = heads * head_dim, ld = 3 * width, tokens = 17;
  const int64_t longest = 11, table_width = 2 * longest - 1;
  const auto qkv = random_floats(static_cast<size_t>(tokens * ld), 23, 2.f);
  const auto table = random_floats(static_cast<size_t>(heads * table_width), 24, 2.f);
  const ops::RelativeBias bias{table.data(), table_width, longest - 1};
  std::vector<float> out(static_cast<size_t>(tokens * width)), expected(out.size());
  ops::cpu::packed_self_attention_f32(out.data(), qkv.data(), qkv.data() + width, qkv.data() + 2 * width,
                                      offsets.data(), 3, heads, head_dim, ld, width, 1.f, &bias);
  ops::reference::packed_self_attention_f32(expected.data(), qkv.data(), qkv.data() + width,
                                            qkv.data() + 2 * width, offsets.data(), 3, heads, head_dim, ld,
                                            width, 1.f, &bias);
  EXPECT_LT(max_abs_diff(out, expected), 1e-5f);
}

// The bf16 tiles with a relative position bias (the API takes one; the encoders' bf16
// attention passes none today): against the reference on the same bf16-rounded numbers.
// 182 keys take AMX's blocks of two row tiles, their scores computed a block ahead.
TEST(AttentionTest, RelativeBiasInBf16TilesMatchesReference) {
  const std::vector<int64_t> offsets = {0, 5, 21, 22, 35, 217};
  const int64_t heads = 2, head_dim = 32, width = heads * head_dim, ld = 3 * width, tokens = 217;
  if (!ops::bf16_attention_available(head_dim)) {
    std::printf("bf16 attention not on this CPU: nothing to compare\n");
    return;
  }
  const int64_t longest = 182, table_width = 2 * longest - 1;
  const auto qkv = random_floats(static_cast<size_t>(tokens * ld), 28, 2.f);
  const auto table = random_floats(static_cast<size_t>(heads * table_width), 29, 2.f);
  const ops::RelativeBias bias{table.data(), table_width, longest - 1};
  std::vector<uint16_t> bits(qkv.size());
  std::vector<float> rounded(qkv.size());
  for (size_t i = 0; i < qkv.size(); ++i) rounded[i] = bf16_to_float(bits[i] = float_to_bf16_bits(qkv[i]));
  // Where the CPU has AMX, its products and the AVX512-BF16 ones (the path of CPUs without).
  for (const bool amx : {true, false}) {
    ops::cpu::allow_bf16_attention_amx(amx);
    if (amx && !ops::cpu::bf16_attention_takes_amx(head_dim)) continue;
    Tensor out(DType::F32, {tokens, width});
    ops::packed_self_attention_bf16(out, bits.data(), bits.data() + width, bits.data() + 2 * width, ld,
                                    offsets, heads, head_dim, 0.25f, &bias);
    std::vector<float> expected(static_cast<size_t>(tokens * width));
    ops::reference::packed_self_attention_f32(expected.data(), rounded.data(), rounded.data() + width,
                                              rounded.data() + 2 * width, offsets.data(), 5, heads, head_dim,
                                              ld, width, 0.25f, &bias);
    const std::vector<float> got(out.data<float>(), out.data<float>() + expected.size());
    // The probabilities are rounded to bf16 for the second product: about 2^-9 of each.
    EXPECT_LT(max_abs_diff(got, expected), 8e-3f) << (amx ? "AMX" : "AVX512-BF16");
  }
  ops::cpu::allow_bf16_attention_amx(true);
}

// head_dim 6 takes the kernel's generic loops, 32, 64 and 128 its vector ones; 5, 7 and
// 23 keys leave a partial group of four, 23 is long enough for the rows read ahead.
TEST(GatheredAttentionTest, MatchesReferenceWithBiasAndEmptyLists) {
  for (int64_t head_dim : {6, 32, 64, 128}) {
    const int64_t heads = 4, width = heads * head_dim, key_rows_total = 30, queries = 4;
    const auto q = random_floats(static_cast<size_t>(queries * width), 25, 2.f);
    const auto kv = random_floats(static_cast<size_t>(key_rows_total * 2 * width), 26, 2.f);
    // Query 0 attends over 5 scattered rows, query 1 over none, query 2 over 7, query 3 over 23.
    const std::vector<int64_t> offsets = {0, 5, 5, 12, 35};
    std::vector<int64_t> rows = {3, 17, 0, 29, 8, 1, 2, 3, 4, 5, 6, 28};
    for (int64_t j = 0; j < 23; ++j) rows.push_back(j * 7 % key_rows_total);
    const auto bias = random_floats(static_cast<size_t>(heads * 23), 27);
    ops::GatheredAttention a;
    a.q = q.data();
    a.ld_q = width;
    a.num_queries = queries;
    a.k = kv.data();
    a.v = kv.data() + width;
    a.ld_kv = 2 * width;
    a.key_offsets = offsets.data();
    a.key_rows = rows.data();
    a.num_heads = heads;
    a.head_dim = head_dim;
    a.scale = 1.f / static_cast<float>(head_dim);
    for (const float* b : {static_cast<const float*>(nullptr), bias.data()}) {
      a.bias = b;
      a.bias_ld = 23;
      std::vector<float> out(static_cast<size_t>(queries * width), 1.f), expected(out.size(), 2.f);
      ops::cpu::gathered_attention_f32(out.data(), width, a);
      ops::reference::gathered_attention_f32(expected.data(), width, a);
      EXPECT_LT(max_abs_diff(out, expected), 1e-5f) << "head_dim " << head_dim;
      for (int64_t x = 0; x < width; ++x) EXPECT_EQ(out[width + x], 0.f);  // no keys: zeros
    }
  }
}

TEST(GatheredAttentionTest, QueriesSharingContiguousKeysMatchReference) {
  // Cross-attention's layout: the beams of one source read the same block of rows.
  const int64_t heads = 2, head_dim = 8, width = heads * head_dim, key_rows_total = 40;
  const auto q = random_floats(static_cast<size_t>(7 * width), 28, 2.f);
  const auto kv = random_floats(static_cast<size_t>(key_rows_total * 2 * width), 29, 2.f);
  std::vector<int64_t> offsets = {0}, rows;
  auto add = [&](std::vector<int64_t> r) {
    rows.insert(rows.end(), r.begin(), r.end());
    offsets.push_back(static_cast<int64_t>(rows.size()));
  };
  for (int b = 0; b < 3; ++b) add({10, 11, 12, 13, 14, 15});  // a group of 3
  add({10, 11, 12, 13, 14});                                  // same start, fewer keys
  add({20, 21, 22, 23, 24, 25});                              // another block
  add({20, 21, 22, 23, 24, 25});
  add({5, 7, 6, 8, 9, 30});  // scattered
  const auto bias = random_floats(static_cast<size_t>(heads * 6), 30);
  ops::GatheredAttention a;
  a.q = q.data();
  a.ld_q = width;
  a.num_queries = 7;
  a.k = kv.data();
  a.v = kv.data() + width;
  a.ld_kv = 2 * width;
  a.key_offsets = offsets.data();
  a.key_rows = rows.data();
  a.num_heads = heads;
  a.head_dim = head_dim;
  a.scale = 0.3f;
  a.bias_ld = 6;
  for (const float* b : {static_cast<const float*>(nullptr), bias.data()}) {
    a.bias = b;
    std::vector<float> out(static_cast<size_t>(7 * width), 1.f), expected(out.size(), 2.f);
    ops::cpu::gathered_attention_f32(out.data(), width, a);
    ops::reference::gathered_attention_f32(expected.data(), width, a);
    EXPECT_LT(max_abs_diff(out, expected), 1e-5f);
  }
}

// The fast compute types' cross-attention: keys and values stored as IEEE half, beams of
// a source sharing a block of rows, lone queries, scattered rows.
TEST(GatheredAttentionTest, HalfKeysAndValuesMatchReference) {
  for (int64_t head_dim : {6, 64}) {
    const int64_t heads = 3, width = heads * head_dim, key_rows_total = 40, queries = 6;
    const auto q = random_floats(static_cast<size_t>(queries * width), 31, 2.f);
    const auto kv = random_floats(static_cast<size_t>(key_rows_total * 2 * width), 32, 2.f);
    std::vector<uint16_t> kv_half(kv.size());
    ops::float_to_half(kv_half.data(), kv.data(), static_cast<int64_t>(kv.size()));
    std::vector<int64_t> offsets = {0}, rows;
    auto add = [&](std::vector<int64_t> r) {
      rows.insert(rows.end(), r.begin(), r.end());
      offsets.push_back(static_cast<int64_t>(rows.size()));
    };
    std::vector<int64_t> block(30);
    for (int64_t j = 0; j < 30; ++j) block[static_cast<size_t>(j)] = 5 + j;
    for (int b = 0; b < 3; ++b) add(block);  // a group of 3
    add({});                                 // no keys
    add({3, 39, 0, 17, 8});                  // scattered
    add(block);                              // alone after the empty and scattered ones
    ops::GatheredAttention a;
    a.q = q.data();
    a.ld_q = width;
    a.num_queries = queries;
    a.k_f16 = kv_half.data();
    a.v_f16 = kv_half.data() + width;
    a.ld_kv = 2 * width;
    a.key_offsets = offsets.data();
    a.key_rows = rows.data();
    a.num_heads = heads;
    a.head_dim = head_dim;
    a.scale = 0.125f;
    std::vector<float> out(static_cast<size_t>(queries * width), 1.f), expected(out.size(), 2.f);
    ops::gathered_attention(out.data(), width, a);
    ops::reference::gathered_attention_f32(expected.data(), width, a);
    EXPECT_LT(max_abs_diff(out, expected), 1e-5f) << "head_dim " << head_dim;
    for (int64_t x = 0; x < width; ++x) EXPECT_EQ(out[3 * width + x], 0.f);  // no keys: zeros
    // ... and within half's rounding of the float32 keys and values.
    ops::GatheredAttention f32 = a;
    f32.k_f16 = f32.v_f16 = nullptr;
    f32.k = kv.data();
    f32.v = kv.data() + width;
    std::vector<float> from_f32(out.size());
    ops::gathered_attention(from_f32.data(), width, f32);
    EXPECT_LT(max_abs_diff(out, from_f32), 5e-3f) << "head_dim " << head_dim;
    // Both kinds at once is an error.
    f32.k_f16 = kv_half.data();
    EXPECT_THROW(ops::gathered_attention(from_f32.data(), width, f32), InvalidInputError);
  }
}

// Cross-attention's store: keys and values head-major, (heads, rows, head_dim) each
// (head_stride), float32 and half, for groups of beams, lone queries and scattered rows,
// against the reference reading the same values side by side in rows.
TEST(GatheredAttentionTest, HeadMajorKeysAndValuesMatchRowMajor) {
  for (int64_t head_dim : {6, 32, 64, 128}) {
    const int64_t heads = 3, width = heads * head_dim, key_rows_total = 40, queries = 8;
    const auto q = random_floats(static_cast<size_t>(queries * width), 33, 2.f);
    const auto kv = random_floats(static_cast<size_t>(key_rows_total * 2 * width), 34, 2.f);
    // (2, heads, rows, head_dim) from the (rows, 2 · width) layout.
    std::vector<float> major(kv.size());
    for (int64_t t = 0; t < 2; ++t)
      for (int64_t h = 0; h < heads; ++h)
        for (int64_t r = 0; r < key_rows_total; ++r)
          for (int64_t x = 0; x < head_dim; ++x)
            major[static_cast<size_t>(((t * heads + h) * key_rows_total + r) * head_dim + x)] =
                kv[static_cast<size_t>(r * 2 * width + t * width + h * head_dim + x)];
    std::vector<uint16_t> kv_half(kv.size()), major_half(kv.size());
    ops::float_to_half(kv_half.data(), kv.data(), static_cast<int64_t>(kv.size()));
    ops::float_to_half(major_half.data(), major.data(), static_cast<int64_t>(kv.size()));
    std::vector<int64_t> offsets = {0}, rows;
    auto add = [&](std::vector<int64_t> r) {
      rows.insert(rows.end(), r.begin(), r.end());
      offsets.push_back(static_cast<int64_t>(rows.size()));
    };
    std::vector<int64_t> block(30);
    for (int64_t j = 0; j < 30; ++j) block[static_cast<size_t>(j)] = 5 + j;
    for (int b = 0; b < 5; ++b) add(block);  // five beams of one source: four, then one
    add({0, 1, 2, 3, 4});                    // another source, alone
    add({});                                 // no keys
    add({3, 39, 0, 17, 8});                  // scattered
    ops::GatheredAttention rowwise;
    rowwise.q = q.data();
    rowwise.ld_q = width;
    rowwise.num_queries = queries;
    rowwise.ld_kv = 2 * width;
    rowwise.key_offsets = offsets.data();
    rowwise.key_rows = rows.data();
    rowwise.num_heads = heads;
    rowwise.head_dim = head_dim;
    rowwise.scale = 0.125f;
    ops::GatheredAttention headwise = rowwise;
    headwise.ld_kv = head_dim;
    headwise.head_stride = key_rows_total * head_dim;
    const int64_t values_at = heads * key_rows_total * head_dim;
    for (bool half : {false, true}) {
      if (half) {
        rowwise.k_f16 = kv_half.data();
        rowwise.v_f16 = kv_half.data() + width;
        headwise.k_f16 = major_half.data();
        headwise.v_f16 = major_half.data() + values_at;
        rowwise.k = rowwise.v = headwise.k = headwise.v = nullptr;
      } else {
        rowwise.k = kv.data();
        rowwise.v = kv.data() + width;
        headwise.k = major.data();
        headwise.v = major.data() + values_at;
      }
      std::vector<float> out(static_cast<size_t>(queries * width), 1.f), expected(out.size(), 2.f),
          reference_headwise(out.size(), 3.f);
      ops::gathered_attention(out.data(), width, headwise);
      ops::reference::gathered_attention_f32(expected.data(), width, rowwise);
      ops::reference::gathered_attention_f32(reference_headwise.data(), width, headwise);
      EXPECT_LT(max_abs_diff(out, expected), 1e-5f) << "head_dim " << head_dim << " half " << half;
      EXPECT_EQ(max_abs_diff(reference_headwise, expected), 0.f) << "head_dim " << head_dim;
      for (int64_t x = 0; x < width; ++x) EXPECT_EQ(out[6 * width + x], 0.f);  // no keys: zeros
    }
    // A head stride below head_dim would overlap the heads.
    headwise.head_stride = head_dim - 1;
    std::vector<float> out(static_cast<size_t>(queries * width));
    EXPECT_THROW(ops::gathered_attention(out.data(), width, headwise), InvalidInputError);
  }
}

// The int8 compute type's cross-attention: keys and values as int8 codes with a scale per
// head's part of a row, head-major (as layers/seq2seq_attention stores them) and side by
// side in rows, for groups of beams, lone queries, scattered rows and no rows.
TEST(GatheredAttentionTest, Int8KeysAndValuesMatchReference) {
  for (int64_t head_dim : {6, 32, 64, 128}) {
    const int64_t heads = 3, width = heads * head_dim, key_rows_total = 40, queries = 8;
    const auto q = random_floats(static_cast<size_t>(queries * width), 35, 2.f);
    const auto kv = random_floats(static_cast<size_t>(key_rows_total * 2 * width), 36, 2.f);
    std::vector<float> major(kv.size());
    for (int64_t t = 0; t < 2; ++t)
      for (int64_t h = 0; h < heads; ++h)
        for (int64_t r = 0; r < key_rows_total; ++r)
          for (int64_t x = 0; x < head_dim; ++x)
            major[static_cast<size_t>(((t * heads + h) * key_rows_total + r) * head_dim + x)] =
                kv[static_cast<size_t>(r * 2 * width + t * width + h * head_dim + x)];
    // Either layout is rows of head_dim values, each with its own scale.
    const int64_t parts = key_rows_total * 2 * heads;
    std::vector<int8_t> kv_codes(kv.size()), major_codes(kv.size());
    std::vector<float> kv_scales(static_cast<size_t>(parts)), major_scales(kv_scales.size());
    ops::quantize_rows_int8(kv_codes.data(), kv_scales.data(), kv.data(), parts, head_dim);
    ops::quantize_rows_int8(major_codes.data(), major_scales.data(), major.data(), parts, head_dim);
    std::vector<int64_t> offsets = {0}, rows;
    auto add = [&](std::vector<int64_t> r) {
      rows.insert(rows.end(), r.begin(), r.end());
      offsets.push_back(static_cast<int64_t>(rows.size()));
    };
    std::vector<int64_t> block(30);
    for (int64_t j = 0; j < 30; ++j) block[static_cast<size_t>(j)] = 5 + j;
    for (int b = 0; b < 5; ++b) add(block);  // five beams of one source: four, then one
    add({0, 1, 2, 3, 4});                    // another source, alone
    add({});                                 // no keys
    add({3, 39, 0, 17, 8});                  // scattered
    ops::GatheredAttention rowwise;
    rowwise.q = q.data();
    rowwise.ld_q = width;
    rowwise.num_queries = queries;
    rowwise.ld_kv = 2 * width;
    rowwise.key_offsets = offsets.data();
    rowwise.key_rows = rows.data();
    rowwise.num_heads = heads;
    rowwise.head_dim = head_dim;
    rowwise.scale = 0.125f;
    ops::GatheredAttention headwise = rowwise, exact = rowwise;
    headwise.ld_kv = head_dim;
    headwise.head_stride = key_rows_total * head_dim;
    const int64_t values_at = heads * key_rows_total * head_dim;
    rowwise.k_i8 = kv_codes.data();
    rowwise.v_i8 = kv_codes.data() + width;
    rowwise.k_scales = kv_scales.data();
    rowwise.v_scales = kv_scales.data() + heads;
    headwise.k_i8 = major_codes.data();
    headwise.v_i8 = major_codes.data() + values_at;
    headwise.k_scales = major_scales.data();
    headwise.v_scales = major_scales.data() + heads * key_rows_total;
    exact.k = kv.data();
    exact.v = kv.data() + width;
    std::vector<float> out_rows(static_cast<size_t>(queries * width), 1.f), out_heads(out_rows.size(), 2.f),
        expected(out_rows.size(), 3.f), from_f32(out_rows.size(), 4.f);
    ops::gathered_attention(out_rows.data(), width, rowwise);
    ops::gathered_attention(out_heads.data(), width, headwise);
    ops::reference::gathered_attention_f32(expected.data(), width, rowwise);
    ops::gathered_attention(from_f32.data(), width, exact);
    EXPECT_LT(max_abs_diff(out_rows, expected), 1e-5f) << "head_dim " << head_dim;
    EXPECT_LT(max_abs_diff(out_heads, expected), 1e-5f) << "head_dim " << head_dim;
    // ... and near the float32 keys and values: codes a 127th of a row's largest |value|
    // (about 7 here, for values of N(0, 2²)) apart, scores of N(0, 2²) queries with
    // standard deviations of 2-6, sharp softmaxes: 0.04-0.13 at most.
    EXPECT_LT(max_abs_diff(out_rows, from_f32), 0.25f) << "head_dim " << head_dim;
    for (int64_t x = 0; x < width; ++x) EXPECT_EQ(out_heads[6 * width + x], 0.f);  // no keys: zeros
    // Without their scales, or with half keys as well, int8 keys are an error.
    ops::GatheredAttention bad = headwise;
    bad.v_scales = nullptr;
    EXPECT_THROW(ops::gathered_attention(out_heads.data(), width, bad), InvalidInputError);
    bad = headwise;
    bad.k_f16 = reinterpret_cast<const uint16_t*>(major_codes.data());
    EXPECT_THROW(ops::gathered_attention(out_heads.data(), width, bad), InvalidInputError);
  }
}

TEST(QuantizeRowsInt8Test, RoundTripsWithinHalfAScaleAndNamesANonFiniteRow) {
  const int64_t rows = 5, d = 37;
  auto x = random_floats(static_cast<size_t>(rows * d), 37, 3.f);
  for (int64_t i = 0; i < d; ++i) x[static_cast<size_t>(2 * d + i)] = 0.f;  // a row of zeros
  std::vector<int8_t> codes(x.size());
  std::vector<float> scales(static_cast<size_t>(rows));
  ops::quantize_rows_int8(codes.data(), scales.data(), x.data(), rows, d);
  for (int64_t r = 0; r < rows; ++r) {
    float largest = 0.f;
    for (int64_t i = 0; i < d; ++i) largest = std::max(largest, std::fabs(x[static_cast<size_t>(r * d + i)]));
    EXPECT_FLOAT_EQ(scales[static_cast<size_t>(r)], largest / 127.f) << "row " << r;
    for (int64_t i = 0; i < d; ++i) {
      const size_t at = static_cast<size_t>(r * d + i);
      EXPECT_LE(std::fabs(codes[at] * scales[static_cast<size_t>(r)] - x[at]),
                0.5f * scales[static_cast<size_t>(r)] * 1.0001f);
    }
  }
  EXPECT_EQ(scales[2], 0.f);
  x[static_cast<size_t>(3 * d + 4)] = std::numeric_limits<float>::quiet_NaN();
  x[static_cast<size_t>(4 * d)] = std::numeric_limits<float>::infinity();
  try {
    ops::quantize_rows_int8(codes.data(), scales.data(), x.data(), rows, d);
    FAIL() << "a NaN row was quantized";
  } catch (const InvalidInputError& e) {
    EXPECT_NE(std::string(e.what()).find("row 3"), std::string::npos) << e.what();
  }
}

// Part-major: piece p of row r lands where a head-major float copy quantized row by row
// puts it, with the same codes and scales; a non-finite value names its row and part.
TEST(QuantizeRowsInt8Test, PartMajorMatchesAHeadMajorCopyAndNamesRowAndPart) {
  const int64_t rows = 7, parts = 6, d = 24;
  auto x = random_floats(static_cast<size_t>(rows * parts * d), 41, 2.f);
  std::vector<float> major(x.size());
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t p = 0; p < parts; ++p)
      std::copy_n(x.begin() + (r * parts + p) * d, d, major.begin() + (p * rows + r) * d);
  std::vector<int8_t> expected_codes(x.size()), codes(x.size());
  std::vector<float> expected_scales(static_cast<size_t>(rows * parts)), scales(expected_scales.size());
  ops::quantize_rows_int8(expected_codes.data(), expected_scales.data(), major.data(), rows * parts, d);
  ops::quantize_rows_int8_part_major(codes.data(), scales.data(), x.data(), rows, parts, d);
  EXPECT_EQ(codes, expected_codes);
  EXPECT_EQ(scales, expected_scales);
  x[static_cast<size_t>((4 * parts + 2) * d + 5)] = std::numeric_limits<float>::infinity();
  x[static_cast<size_t>((5 * parts + 1) * d)] = std::numeric_limits<float>::quiet_NaN();
  try {
    ops::quantize_rows_int8_part_major(codes.data(), scales.data(), x.data(), rows, parts, d);
    FAIL() << "a value that is not finite was quantized";
  } catch (const InvalidInputError& e) {
    EXPECT_NE(std::string(e.what()).find("row 4, part 2"), std::string::npos) << e.what();
  }
}

// Rounding to the nearest half (ties to even), saturating at the largest finite half;
// 19 values: the 8-wide loop and the tail.
TEST(Float16Test, RoundsToNearestEvenAndSaturates) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const std::vector<float> in = {
      1.f, 1.f + 0x1p-11f, 1.f + 3 * 0x1p-11f, 65504.f, 1e6f, -1e6f, nan, 0.f, -2.5f, 1e-8f,
      1.f, 1.f + 0x1p-11f, 1.f + 3 * 0x1p-11f, 65504.f, 1e6f, -1e6f, nan, 0.f, -2.5f};
  const std::vector<uint16_t> expected = {0x3C00, 0x3C00, 0x3C02, 0x7BFF, 0x7BFF, 0xFBFF, 0,
                                          0x0000, 0xC100, 0x0000, 0x3C00, 0x3C00, 0x3C02, 0x7BFF,
                                          0x7BFF, 0xFBFF, 0,      0x0000, 0xC100};
  std::vector<uint16_t> out(in.size());
  ops::float_to_half(out.data(), in.data(), static_cast<int64_t>(in.size()));
  for (size_t i = 0; i < in.size(); ++i) {
    if (std::isnan(in[i])) {
      EXPECT_TRUE(std::isnan(half_to_float(out[i]))) << i;
      continue;
    }
    EXPECT_EQ(out[i], expected[i]) << i << ": " << in[i];
    EXPECT_EQ(half_to_float(out[i]), half_to_float(expected[i])) << i;
  }
}

TEST(GatheredAttentionTest, RejectsDecreasingOffsets) {
  std::vector<float> buf(64);
  const std::vector<int64_t> offsets = {0, 2, 1};
  const std::vector<int64_t> rows = {0, 1};
  ops::GatheredAttention a;
  a.q = a.k = a.v = buf.data();
  a.ld_q = a.ld_kv = 4;
  a.num_queries = 2;
  a.key_offsets = offsets.data();
  a.key_rows = rows.data();
  a.num_heads = 1;
  a.head_dim = 4;
  EXPECT_THROW(ops::gathered_attention(buf.data(), 4, a), InvalidInputError);
}

TEST(KvCacheTest, ReorderRewritesHistoryWithoutMovingStorage) {
  KvCache cache(1, 3, 5, 2);
  std::vector<int64_t> offsets, rows;
  // After step 0 and 1, row 2 continues row 0 and row 0 continues row 1.
  cache.reorder({0, 1, 2}, {1, 1, 0}, 2);
  cache.key_rows({0, 2}, 2, offsets, rows);
  ASSERT_EQ(offsets, (std::vector<int64_t>{0, 3, 6}));
  // Row 0: steps 0-1 from row 1's storage, step 2 its own.
  EXPECT_EQ(rows[0], cache.storage_row(1, 0));
  EXPECT_EQ(rows[1], cache.storage_row(1, 1));
  EXPECT_EQ(rows[2], cache.storage_row(0, 2));
  // Row 2: steps 0-1 from row 0's storage (the history it had before the reorder).
  EXPECT_EQ(rows[3], cache.storage_row(0, 0));
  EXPECT_EQ(rows[4], cache.storage_row(0, 1));
  EXPECT_EQ(rows[5], cache.storage_row(2, 2));
}

// Keys and values in float32, IEEE half or int8 (with a scale per slot and head), each
// layer's buffers of that type; no other, and int8 rows split into whole heads.
TEST(KvCacheTest, HoldsFloat32HalfOrInt8) {
  KvCache half(2, 3, 4, 8, DType::F16);
  EXPECT_EQ(half.dtype(), DType::F16);
  EXPECT_EQ(KvCache(1, 1, 1, 8).dtype(), DType::F32);
  EXPECT_NE(half.keys(0), half.keys(1));
  EXPECT_NE(half.keys(1), half.values(1));
  KvCache codes(2, 3, 4, 8, DType::I8, 2);
  EXPECT_EQ(codes.dtype(), DType::I8);
  EXPECT_NE(codes.key_scales(0), codes.key_scales(1));
  EXPECT_NE(codes.key_scales(1), codes.value_scales(1));
  EXPECT_THROW(KvCache(1, 1, 1, 8, DType::I8, 3), Error);
  EXPECT_THROW(KvCache(1, 1, 1, 8, DType::BF16), Error);
}

// The row reductions of a decoding step: log-sum-exp against a double-precision sum over a
// vocabulary-sized row, log_softmax as x minus it, and argmax's first-maximum choice.
TEST(LogitsTest, LogSumExpArgmaxAndLogSoftmax) {
  const int64_t n = 50265;
  auto x = random_floats(static_cast<size_t>(n), 41, 8.f);
  x[777] = 100.f;
  x[40000] = 100.f;  // a tie: the first wins
  double max_v = -INFINITY, sum = 0;
  for (float v : x) max_v = std::max(max_v, static_cast<double>(v));
  for (float v : x) sum += std::exp(static_cast<double>(v) - max_v);
  const double expected = max_v + std::log(sum);
  const float lse = log_sum_exp_row(x.data(), n);
  EXPECT_NEAR(lse, expected, 1e-5 * std::abs(expected));
  EXPECT_EQ(argmax_row(x.data(), n), 777);
  auto y = x;
  log_softmax_row(y.data(), n);
  for (int64_t i = 0; i < n; i += 997) EXPECT_EQ(y[i], x[i] - lse);
  // NaN never wins; a row of -inf keeps its values and picks its first.
  const float nan = std::numeric_limits<float>::quiet_NaN(), inf = std::numeric_limits<float>::infinity();
  std::vector<float> odd = {nan, 1.f, 3.f, nan, 3.f};
  EXPECT_EQ(argmax_row(odd.data(), 5), 2);
  std::vector<float> masked(9, -inf);
  EXPECT_EQ(argmax_row(masked.data(), 9), 0);
  EXPECT_EQ(log_sum_exp_row(masked.data(), 9), -inf);
  log_softmax_row(masked.data(), 9);
  for (float v : masked) EXPECT_EQ(v, -inf);
  std::vector<float> all_nan(3, nan);
  EXPECT_EQ(argmax_row(all_nan.data(), 3), 0);
}

}  // namespace nle::test
