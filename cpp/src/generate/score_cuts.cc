#include "generate/score_cuts.h"

#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "ops/cpu/vector_math.h"

namespace nle {
namespace {

constexpr float kNegInf = -std::numeric_limits<float>::infinity();
constexpr uint32_t kSign = 0x80000000u;

// A score's bits as an integer in the order of the floats (-0 as +0, so that the zeros
// tie as they compare; a NaN sorts above +inf, as torch.topk ranks it): negative floats
// get their magnitude bits flipped. Branch-free, so that loops over a row vectorise.
inline int32_t signed_order_key(float x) {
  uint32_t bits = __builtin_bit_cast(uint32_t, x);
  bits = bits == kSign ? 0u : bits;
  const auto value = static_cast<int32_t>(bits);
  return value ^ ((value >> 31) & 0x7fffffff);
}

// The same as an unsigned key (the search's domain: 0 is the lowest).
inline uint32_t order_key(float x) { return static_cast<uint32_t>(signed_order_key(x)) ^ kSign; }

inline float key_score(uint32_t key) {
  return __builtin_bit_cast(float, (key & kSign) != 0 ? (key & ~kSign) : ~key);
}

// A head of the descending order: every score whose key is above `key`, and the `ties`
// highest-index ones whose key equals it.
struct Cut {
  uint32_t key;
  int64_t ties;
};

// The longer of two heads of the same order.
Cut longer(const Cut& a, const Cut& b) {
  if (a.key != b.key) return a.key < b.key ? a : b;
  return a.ties >= b.ties ? a : b;
}

// Keys in the search's working arrays are kept signed (signed_order_key), which AVX2
// compares directly.
inline int32_t signed_key(uint32_t key) { return static_cast<int32_t>(key ^ kSign); }

// Σ x[0, n) in double, in eight lanes summed in order.
double sum_as_double(const float* x, int64_t n) {
  __m256d sum_lo = _mm256_setzero_pd(), sum_hi = _mm256_setzero_pd();
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 v = _mm256_loadu_ps(x + i);
    sum_lo = _mm256_add_pd(sum_lo, _mm256_cvtps_pd(_mm256_castps256_ps128(v)));
    sum_hi = _mm256_add_pd(sum_hi, _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1)));
  }
  alignas(32) double sums[8];
  _mm256_store_pd(sums, sum_lo);
  _mm256_store_pd(sums + 4, sum_hi);
  double total = 0;
  for (double v : sums) total += v;
  for (; i < n; ++i) total += static_cast<double>(x[i]);
  return total;
}

// How many of keys[0, m) lie in [low, high], and (Weighted) their weights' sum, in eight
// lanes summed in order, so that a row always gives the same sums.
template <bool Weighted>
std::pair<int64_t, double> measure_between(const int32_t* keys, const float* weights, int64_t m, int32_t low,
                                           int32_t high) {
  const __m256i low_v = _mm256_set1_epi32(low), high_v = _mm256_set1_epi32(high);
  __m256i count = _mm256_setzero_si256();
  __m256d sum_lo = _mm256_setzero_pd(), sum_hi = _mm256_setzero_pd();
  int64_t i = 0;
  for (; i + 8 <= m; i += 8) {
    const __m256i k = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(keys + i));
    const __m256i out = _mm256_or_si256(_mm256_cmpgt_epi32(k, high_v), _mm256_cmpgt_epi32(low_v, k));
    count = _mm256_sub_epi32(count, _mm256_xor_si256(out, _mm256_set1_epi32(-1)));  // in: -1
    if constexpr (Weighted) {
      const __m256 w = _mm256_andnot_ps(_mm256_castsi256_ps(out), _mm256_loadu_ps(weights + i));
      sum_lo = _mm256_add_pd(sum_lo, _mm256_cvtps_pd(_mm256_castps256_ps128(w)));
      sum_hi = _mm256_add_pd(sum_hi, _mm256_cvtps_pd(_mm256_extractf128_ps(w, 1)));
    }
  }
  alignas(32) int32_t counts[8];
  alignas(32) double sums[8];
  _mm256_store_si256(reinterpret_cast<__m256i*>(counts), count);
  _mm256_store_pd(sums, sum_lo);
  _mm256_store_pd(sums + 4, sum_hi);
  int64_t n_in = 0;
  double total = 0;
  for (int l = 0; l < 8; ++l) {
    n_in += counts[l];
    total += sums[l];
  }
  for (; i < m; ++i) {
    if (keys[i] < low || keys[i] > high) continue;
    ++n_in;
    if constexpr (Weighted) total += static_cast<double>(weights[i]);
  }
  return {n_in, Weighted ? total : static_cast<double>(n_in)};
}

// The largest key K whose scores at or above it measure at least `target` (each score
// counting 1, or its weight), with the measure of the scores above K: a binary search
// over K's 32 bits, each step one vectorised pass over the scores still between its
// bounds, which are moved to the front whenever they have become half as many or fewer.
// keys (as signed_key) and weights are the row's, overwritten. The row must measure at
// least `target` in all.
template <bool Weighted>
std::pair<uint32_t, double> largest_key_reaching(int32_t* keys, float* weights, int64_t n, double target) {
  uint64_t lo = 0, hi = uint64_t{1} << 32;  // measure(>= lo) >= target > measure(>= hi)
  double above_hi = 0;                      // the measure of the scores at or above hi
  int64_t m = n;                            // keys[0, m) hold every score in [lo, hi) ...
  int64_t between = n;                      // ... of which there are this many
  while (hi - lo > 1) {
    const auto mid = static_cast<uint32_t>(lo + (hi - lo) / 2);
    const auto [upper_count, upper] = measure_between<Weighted>(
        keys, weights, m, signed_key(mid), signed_key(static_cast<uint32_t>(hi - 1)));  // [mid, hi)
    if (above_hi + upper >= target) {
      lo = mid;
      between = upper_count;
    } else {
      hi = mid;
      above_hi += upper;
      between -= upper_count;
    }
    if (between * 2 <= m) {
      const int32_t low = signed_key(static_cast<uint32_t>(lo)),
                    high = signed_key(static_cast<uint32_t>(hi - 1));
      int64_t kept = 0;
      for (int64_t i = 0; i < m; ++i) {  // without branches
        const int32_t key = keys[i];
        keys[kept] = key;
        if constexpr (Weighted) weights[kept] = weights[i];
        kept += key >= low && key <= high ? 1 : 0;
      }
      m = kept;
    }
  }
  return {static_cast<uint32_t>(lo), above_hi};
}

// How many of scores[0, n) have the key `key`.
int64_t count_key(const float* scores, int64_t n, uint32_t key) {
  int64_t count = 0;
#pragma omp simd reduction(+ : count)
  for (int64_t i = 0; i < n; ++i) count += order_key(scores[i]) == key ? 1 : 0;
  return count;
}

// The first `count` of the descending order.
Cut first_of_order(const float* scores, int64_t n, int64_t count, std::vector<int32_t>& keys) {
  for (int64_t i = 0; i < n; ++i) keys[i] = signed_order_key(scores[i]);
  const auto [key, above] = largest_key_reaching<false>(keys.data(), nullptr, n, static_cast<double>(count));
  return {key, count - static_cast<int64_t>(above)};
}

// How many scores `cut` keeps.
int64_t kept_by(const float* scores, int64_t n, const Cut& cut) {
  int64_t above = 0;
#pragma omp simd reduction(+ : above)
  for (int64_t i = 0; i < n; ++i) above += order_key(scores[i]) > cut.key ? 1 : 0;
  return above + cut.ties;
}

// Scores outside `cut` become -inf.
void apply(float* scores, int64_t n, const Cut& cut) {
  int64_t tied = 0;
#pragma omp simd reduction(+ : tied)
  for (int64_t i = 0; i < n; ++i) {
    const uint32_t key = order_key(scores[i]);
    tied += key == cut.key ? 1 : 0;
    scores[i] = key < cut.key ? kNegInf : scores[i];
  }
  if (tied <= cut.ties) return;
  // More scores equal the boundary than the head takes: the higher indices stay.
  int64_t kept = 0;
  for (int64_t i = n - 1; i >= 0; --i) {
    if (order_key(scores[i]) != cut.key) continue;
    if (kept < cut.ties)
      ++kept;
    else
      scores[i] = kNegInf;
  }
}

}  // namespace

float kth_largest_score(const float* scores, int64_t n, int64_t k) {
  thread_local std::vector<int32_t> keys;
  keys.resize(static_cast<size_t>(n));
  return key_score(first_of_order(scores, n, k, keys).key);
}

void keep_top_p(float* scores, int64_t n, float top_p, int64_t min_keep) {
  thread_local std::vector<int32_t> keys;
  thread_local std::vector<float> weights;
  keys.resize(static_cast<size_t>(n));
  weights.resize(static_cast<size_t>(n));
  min_keep = std::clamp<int64_t>(min_keep, 1, n);
  float max_v = kNegInf;
#pragma omp simd reduction(max : max_v)
  for (int64_t i = 0; i < n; ++i) max_v = scores[i] > max_v ? scores[i] : max_v;  // skips NaN
  // Every score -inf: the order is by index alone.
  if (max_v == kNegInf) {
    apply(scores, n, first_of_order(scores, n, min_keep, keys));
    return;
  }
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) keys[i] = signed_order_key(scores[i]);
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) weights[i] = scores[i] - max_v;
  ops::cpu::exp_nonpositive_f32(weights.data(), n);  // a NaN weighs 0
  const double total = sum_as_double(weights.data(), n);
  // Token j stays when the probability before it, A_j, is below top_p: its ascending
  // running sum, 1 - A_j, is above 1 - top_p (TopPLogitsWarper's test, reversed).
  const double target = static_cast<double>(top_p) * total;
  const auto [key, above] = largest_key_reaching<true>(keys.data(), weights.data(), n, target);
  // Tied scores weigh the same: the t-th of them (highest index first) has A = above + t w.
  const double w = ops::cpu::exp_nonpositive_f32(key_score(key) - max_v);
  const int64_t tied = count_key(scores, n, key);
  int64_t ties = 0;
  while (ties < tied && above + static_cast<double>(ties) * w < target) ++ties;
  Cut cut{key, ties};
  if (kept_by(scores, n, cut) < min_keep) cut = longer(cut, first_of_order(scores, n, min_keep, keys));
  apply(scores, n, cut);
}

WeightedDraws::WeightedDraws(float* weights, int64_t n) : weights_(weights), n_(n) {
  block_sums_.resize(static_cast<size_t>((n + kBlock - 1) / kBlock));
  for (size_t b = 0; b < block_sums_.size(); ++b) sum_block(b);
  sum_blocks();
}

void WeightedDraws::sum_block(size_t b) {
  const int64_t begin = static_cast<int64_t>(b) * kBlock;
  block_sums_[b] = sum_as_double(weights_ + begin, std::min(n_, begin + kBlock) - begin);
}

void WeightedDraws::sum_blocks() {
  total_ = 0;
  for (double sum : block_sums_) total_ += sum;
}

int64_t WeightedDraws::draw(double u) const {
  const double target = u * total_;
  double running = 0;
  int64_t last = -1;  // the last index with weight, should rounding leave target unreached
  for (size_t b = 0; b < block_sums_.size(); ++b) {
    const double sum = block_sums_[b];
    if (!(sum > 0)) continue;
    const int64_t begin = static_cast<int64_t>(b) * kBlock, end = std::min(n_, begin + kBlock);
    if (running + sum > target) {
      double inside = running;
      for (int64_t i = begin; i < end; ++i) {
        if (!(weights_[i] > 0)) continue;
        inside += static_cast<double>(weights_[i]);
        last = i;
        if (inside > target) return i;
      }
    } else {
      for (int64_t i = end - 1; i >= begin; --i)
        if (weights_[i] > 0) {
          last = i;
          break;
        }
    }
    running += sum;
  }
  return last;
}

void WeightedDraws::remove(int64_t i) {
  weights_[i] = 0.f;
  // The block's sum and the total again, not less the weight: no rounding left behind
  // once a block holds nothing.
  sum_block(static_cast<size_t>(i / kBlock));
  sum_blocks();
}

}  // namespace nle
