// Sampling's filters and draw (generate/score_cuts.h) against the sorts they replace:
// top-k against std::nth_element, top-p against a stable ascending sort with running sums
// in long double (TopPLogitsWarper's definition), draws against a running sum in index
// order. Rows with ties, -inf, a single token and a bart-sized vocabulary.
#include "generate/score_cuts.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <numeric>
#include <random>
#include <vector>

namespace nle::test {
namespace {

constexpr float kNegInf = -std::numeric_limits<float>::infinity();

// Rows of several shapes: spread or flat scores (a random-weight model's are flat), scores
// on a coarse grid (many ties), some -inf (banned tokens, or a top-k before top-p).
std::vector<float> make_row(std::mt19937& rng, int64_t n, int kind) {
  std::normal_distribution<float> normal(0.f, kind == 1 ? 0.05f : 3.f);
  std::vector<float> row(static_cast<size_t>(n));
  for (float& x : row) x = normal(rng);
  if (kind == 2)
    for (float& x : row) x = std::round(x * 2.f) / 2.f;
  if (kind == 3) {
    std::uniform_int_distribution<int64_t> pick(0, n - 1);
    for (int64_t i = 0; i < n / 3; ++i) row[static_cast<size_t>(pick(rng))] = kNegInf;
  }
  if (kind == 4)
    for (float& x : row) x = std::round(x) == 0.f ? -0.f : x;  // -0 and +0 must tie
  return row;
}

// Whether each token stays under TopPLogitsWarper: ascending by score (stable: equal
// scores by index), a token goes when the running probability up to it is <= 1 - top_p,
// and the last min_keep always stay. `margin` receives, per token, how far its
// probability-before (1 - running sum) is from top_p, to excuse rounding.
std::vector<bool> reference_top_p(const std::vector<float>& row, float top_p, int64_t min_keep,
                                  std::vector<long double>& margin) {
  const auto n = static_cast<int64_t>(row.size());
  std::vector<int64_t> order(row.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return row[a] < row[b]; });
  const float max_v = *std::max_element(row.begin(), row.end());
  long double total = 0;
  std::vector<long double> p(row.size());
  for (int64_t i = 0; i < n; ++i)
    total += p[i] = max_v == kNegInf ? 0.L : std::exp((long double)row[i] - max_v);
  std::vector<bool> keep(row.size(), true);
  margin.assign(row.size(), 1.L);
  long double running = 0;
  for (int64_t j = 0; j < n; ++j) {
    const int64_t t = order[j];
    running += p[t];
    const long double before = total > 0 ? 1.L - running / total + p[t] / total : 0.L;  // A_j
    margin[t] = std::fabs(before - (long double)top_p);
    if (j < n - min_keep && (total == 0 || running / total <= 1.L - (long double)top_p)) keep[t] = false;
  }
  return keep;
}

TEST(ScoreCutsTest, KthLargestMatchesNthElement) {
  std::mt19937 rng(1);
  for (const int64_t n : {1, 2, 7, 100, 1000, 50265}) {
    for (int kind = 0; kind < 5; ++kind) {
      const std::vector<float> row = make_row(rng, n, kind);
      for (const int64_t k : {int64_t{1}, int64_t{2}, int64_t{50}, n / 2 + 1, n}) {
        if (k > n || k < 1) continue;
        std::vector<float> sorted = row;
        std::nth_element(sorted.begin(), sorted.begin() + (k - 1), sorted.end(), std::greater<float>());
        EXPECT_EQ(kth_largest_score(row.data(), n, k), sorted[k - 1])
            << "n=" << n << " kind=" << kind << " k=" << k;
      }
    }
  }
}

TEST(ScoreCutsTest, TopPKeepsWhatTheSortedDefinitionKeeps) {
  std::mt19937 rng(2);
  int64_t compared = 0, excused = 0;
  for (const int64_t n : {1, 2, 7, 100, 1000, 50265}) {
    for (int kind = 0; kind < 5; ++kind) {
      for (const float top_p : {0.05f, 0.5f, 0.9f, 0.999f}) {
        for (const int64_t min_keep : {int64_t{1}, int64_t{3}, n + 5}) {
          const std::vector<float> row = make_row(rng, n, kind);
          std::vector<long double> margin;
          const std::vector<bool> expected = reference_top_p(row, top_p, std::min(min_keep, n), margin);
          std::vector<float> actual = row;
          keep_top_p(actual.data(), n, top_p, min_keep);
          for (int64_t i = 0; i < n; ++i) {
            const bool kept = actual[i] != kNegInf || row[i] == kNegInf;
            if (kept && row[i] != kNegInf) {
              EXPECT_EQ(actual[i], row[i]);  // kept scores unchanged
            }
            const bool expected_kept = expected[i] || (row[i] == kNegInf && actual[i] == kNegInf);
            ++compared;
            if (kept == expected_kept) continue;
            // Only a token whose probability-before is top_p to rounding may fall either way.
            ASSERT_LT(margin[i], 1e-9L) << "n=" << n << " kind=" << kind << " top_p=" << top_p
                                        << " min_keep=" << min_keep << " token " << i;
            ++excused;
          }
          const auto kept_count =
              std::count_if(actual.begin(), actual.end(), [](float x) { return x != kNegInf; });
          const auto finite = std::count_if(row.begin(), row.end(), [](float x) { return x != kNegInf; });
          EXPECT_GE(kept_count, std::min<int64_t>(std::min(min_keep, n), finite));
        }
      }
    }
  }
  EXPECT_LE(excused, compared / 100000 + 2);
}

TEST(ScoreCutsTest, TopPOfARowOfMinusInfinityKeepsTheHighestIndices) {
  std::vector<float> row(10, kNegInf);
  keep_top_p(row.data(), 10, 0.5f, 3);  // nothing changes value, nothing breaks
  EXPECT_TRUE(std::all_of(row.begin(), row.end(), [](float x) { return x == kNegInf; }));
}

TEST(ScoreCutsTest, TiesAtTheBoundaryKeepTheHigherIndices) {
  // Four equal scores of probability 1/4 each: top_p 0.5 keeps two, and transformers'
  // stable ascending sort puts the higher indices last, so those two stay.
  std::vector<float> row = {1.f, 1.f, 1.f, 1.f};
  keep_top_p(row.data(), 4, 0.5f, 1);
  EXPECT_EQ(row[0], kNegInf);
  EXPECT_EQ(row[1], kNegInf);
  EXPECT_EQ(row[2], 1.f);
  EXPECT_EQ(row[3], 1.f);
}

TEST(ScoreCutsTest, DrawsFollowTheRunningSum) {
  std::mt19937 rng(3);
  std::uniform_real_distribution<double> uniform(0.0, 1.0);
  for (const int64_t n : {1, 5, 255, 256, 257, 50265}) {
    std::vector<float> w(static_cast<size_t>(n));
    std::exponential_distribution<float> exponential(1.f);
    for (float& x : w) x = exponential(rng);
    for (int64_t i = 0; i < n; i += 3) w[static_cast<size_t>(i)] = 0.f;  // never drawn
    if (std::all_of(w.begin(), w.end(), [](float x) { return x == 0.f; })) w.back() = 1.f;
    long double total = 0;
    for (float x : w) total += x;
    for (int draw = 0; draw < 200; ++draw) {
      const double u = draw == 0 ? 0.0 : draw == 1 ? std::nextafter(1.0, 0.0) : uniform(rng);
      const int64_t i = WeightedDraws(w.data(), n).draw(u);
      ASSERT_GE(i, 0);
      ASSERT_LT(i, n);
      ASSERT_GT(w[static_cast<size_t>(i)], 0.f) << "n=" << n << " u=" << u;
      long double before = 0;
      for (int64_t j = 0; j < i; ++j) before += w[static_cast<size_t>(j)];
      const long double target = u * total, slack = 1e-12L * total;
      EXPECT_LE(before, target + slack) << "n=" << n << " u=" << u;
      EXPECT_GT(before + w[static_cast<size_t>(i)], target - slack) << "n=" << n << " u=" << u;
    }
  }
}

TEST(ScoreCutsTest, DrawsWithoutReplacementTakeEachWeightOnceThenNothing) {
  std::mt19937 rng(4);
  std::uniform_real_distribution<double> uniform(0.0, 1.0);
  for (const int64_t n : {1, 3, 300, 1000}) {
    std::vector<float> w(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i)
      w[static_cast<size_t>(i)] = i % 4 == 1 ? 0.f : 1.f + static_cast<float>(i % 7);
    const auto positive = std::count_if(w.begin(), w.end(), [](float x) { return x > 0; });
    WeightedDraws draws(w.data(), n);
    std::vector<bool> taken(static_cast<size_t>(n), false);
    for (int64_t k = 0; k < positive; ++k) {
      const int64_t i = draws.draw(uniform(rng));
      ASSERT_GE(i, 0) << "n=" << n << " draw " << k;
      ASSERT_FALSE(taken[static_cast<size_t>(i)]) << "n=" << n << " drew " << i << " twice";
      ASSERT_NE(i % 4, 1) << "a zero weight was drawn";
      taken[static_cast<size_t>(i)] = true;
      draws.remove(i);
    }
    EXPECT_EQ(draws.draw(0.5), -1);
    EXPECT_EQ(draws.draw(0.0), -1);
  }
}

TEST(ScoreCutsTest, DrawsFollowTheWeights) {
  // 20,000 draws from weights 1:2:3:4 (with zeros between): frequencies within 3%.
  std::vector<float> w = {1.f, 0.f, 2.f, 0.f, 3.f, 4.f};
  const WeightedDraws draws(w.data(), static_cast<int64_t>(w.size()));
  std::mt19937 rng(5);
  std::uniform_real_distribution<double> uniform(0.0, 1.0);
  std::vector<int> counts(w.size(), 0);
  constexpr int kDraws = 20000;
  for (int i = 0; i < kDraws; ++i) ++counts[static_cast<size_t>(draws.draw(uniform(rng)))];
  for (size_t i = 0; i < w.size(); ++i) EXPECT_NEAR(counts[i] / double(kDraws), w[i] / 10.0, 0.03) << i;
}

}  // namespace
}  // namespace nle::test
