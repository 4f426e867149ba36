#include "generate/logits_processors.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <set>
#include <vector>

#include "generate/score_cuts.h"
#include "ops/cpu/vector_math.h"

namespace nle {

namespace {

constexpr float kNegInf = -std::numeric_limits<float>::infinity();

void repetition_penalty(float* scores, const int64_t* tokens, int64_t cur_len, float penalty) {
  std::set<int64_t> seen(tokens, tokens + cur_len);
  for (int64_t t : seen) scores[t] = scores[t] < 0 ? scores[t] * penalty : scores[t] / penalty;
}

void no_repeat_ngram(float* scores, const int64_t* tokens, int64_t cur_len, int64_t n) {
  if (cur_len + 1 < n) return;
  // Tokens that followed the current (n-1)-token suffix anywhere before.
  const int64_t start = cur_len + 1 - n;
  for (int64_t i = 0; i + n <= cur_len; ++i) {
    if (std::equal(tokens + i, tokens + i + n - 1, tokens + start)) scores[tokens[i + n - 1]] = kNegInf;
  }
}

void suppress(float* scores, const std::vector<int64_t>& ids) {
  for (int64_t id : ids) scores[id] = kNegInf;
}

// transformers' NoBadWordsLogitsProcessor: one-token sequences (but an end token's) always,
// a longer sequence's last token where the tokens so far end with the rest of it.
void ban_bad_words(float* scores, const int64_t* tokens, int64_t cur_len,
                   const std::vector<std::vector<int64_t>>& bad_words, const std::vector<int64_t>& eos) {
  for (const auto& word : bad_words) {
    const auto prefix = static_cast<int64_t>(word.size()) - 1;
    if (prefix == 0) {
      if (std::find(eos.begin(), eos.end(), word[0]) == eos.end()) scores[word[0]] = kNegInf;
    } else if (prefix <= cur_len && std::equal(word.begin(), word.end() - 1, tokens + cur_len - prefix)) {
      scores[word.back()] = kNegInf;
    }
  }
}

void force(float* scores, int64_t vocab, const std::vector<int64_t>& ids) {
  std::fill(scores, scores + vocab, kNegInf);
  for (int64_t id : ids) scores[id] = 0.f;
}

}  // namespace

void process_logits(float* scores, int64_t vocab, const int64_t* tokens, int64_t cur_len,
                    const ProcessorSettings& s) {
  const GenerationOptions& o = *s.options;
  if (o.repetition_penalty != 1.f) repetition_penalty(scores, tokens, cur_len, o.repetition_penalty);
  if (o.no_repeat_ngram_size > 0) no_repeat_ngram(scores, tokens, cur_len, o.no_repeat_ngram_size);
  if (!o.bad_words_ids.empty()) ban_bad_words(scores, tokens, cur_len, o.bad_words_ids, o.eos_token_id);
  if (!o.eos_token_id.empty()) {
    if (o.min_length > 0 && cur_len < o.min_length) suppress(scores, o.eos_token_id);
    if (o.min_new_tokens > 0 && cur_len - 1 < o.min_new_tokens) suppress(scores, o.eos_token_id);
  }
  if (o.forced_bos_token_id >= 0 && cur_len == 1) force(scores, vocab, {o.forced_bos_token_id});
  if (!o.forced_eos_token_id.empty() && cur_len == s.max_length - 1)
    force(scores, vocab, o.forced_eos_token_id);
  suppress(scores, o.suppress_tokens);
  // The first generated token: after the start token, or after a forced BOS.
  const int64_t begin = o.forced_bos_token_id >= 0 ? 2 : 1;
  if (cur_len == begin) suppress(scores, o.begin_suppress_tokens);
}

void warp_logits(float* scores, int64_t vocab, const ProcessorSettings& s) {
  const GenerationOptions& o = *s.options;
  if (o.temperature != 1.f) {
    const float temperature = o.temperature;
#pragma omp simd
    for (int64_t i = 0; i < vocab; ++i) scores[i] /= temperature;
  }
  if (o.top_k > 0) {
    // Scores below the k-th largest go; those equal to it stay (TopKLogitsWarper).
    const float kth =
        kth_largest_score(scores, vocab, std::min(std::max(o.top_k, s.min_tokens_to_keep), vocab));
#pragma omp simd
    for (int64_t i = 0; i < vocab; ++i) scores[i] = scores[i] < kth ? kNegInf : scores[i];
  }
  if (o.top_p < 1.f) keep_top_p(scores, vocab, o.top_p, s.min_tokens_to_keep);
}

namespace {

float row_max(const float* x, int64_t n) {
  float max_v = kNegInf;
#pragma omp simd reduction(max : max_v)
  for (int64_t i = 0; i < n; ++i) max_v = x[i] > max_v ? x[i] : max_v;  // vectorises; skips NaN
  return max_v;
}

}  // namespace

float log_sum_exp_row(const float* x, int64_t n) {
  const float max_v = row_max(x, n);
  if (max_v == kNegInf) return kNegInf;
  // exp over the whole row at once (vocabularies are tens of thousands long).
  thread_local std::vector<float> e;
  e.resize(static_cast<size_t>(n));
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) e[static_cast<size_t>(i)] = x[i] - max_v;
  ops::cpu::exp_nonpositive_f32(e.data(), n);  // x - max
  double sum = 0.0;
#pragma omp simd reduction(+ : sum)
  for (int64_t i = 0; i < n; ++i) sum += e[static_cast<size_t>(i)];
  return max_v + static_cast<float>(std::log(sum));
}

void log_softmax_row(float* x, int64_t n) {
  const float shift = log_sum_exp_row(x, n);
  if (shift == kNegInf) return;
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) x[i] -= shift;
}

int64_t argmax_row(const float* x, int64_t n) {
  const float max_v = row_max(x, n);
  for (int64_t i = 0; i < n; ++i)
    if (x[i] == max_v) return i;
  return 0;
}

}  // namespace nle
