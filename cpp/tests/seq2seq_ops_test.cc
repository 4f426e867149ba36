// The kernels and pieces the encoder-decoder runtime adds: RMS norm, attention
// with a relative position bias, attention over gathered (cached) key rows,
// the KV cache's history-based beam reordering, and T5's distance buckets.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <limits>

#include "core/half.h"
#include "generate/kv_cache.h"
#include "ops/attention.h"
#include "ops/float16.h"
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
                                            qkv.data() + 2 * width, offsets.data(), 3, heads, head_dim, ld, width,
                                            1.f, &bias);
  EXPECT_LT(max_abs_diff(out, expected), 1e-5f);
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
  add({10, 11, 12, 13, 14});                                // same start, fewer keys
  add({20, 21, 22, 23, 24, 25});                            // another block
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

}  // namespace nle::test
