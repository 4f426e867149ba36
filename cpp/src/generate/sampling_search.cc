#include <algorithm>
#include <cmath>
#include <random>

#include "generate/logits_processors.h"
#include "generate/score_cuts.h"
#include "generate/searches.h"
#include "ops/cpu/vector_math.h"

namespace nle {

SearchOutput sampling_search(DecoderSession& session, int64_t num_rows, const GenerationOptions& o) {
  const int64_t vocab = session.vocab_size();
  const int64_t max_length = o.effective_max_length();
  const ProcessorSettings settings{&o, max_length, 1};
  std::mt19937_64 rng(o.seed);
  std::uniform_real_distribution<double> uniform(0.0, 1.0);

  SearchOutput out;
  out.fill_token = o.pad_token_id;
  out.sequences.assign(static_cast<size_t>(num_rows), {o.decoder_start_token_id});
  out.scores.assign(static_cast<size_t>(num_rows), 0.f);
  std::vector<int64_t> active(static_cast<size_t>(num_rows));
  for (int64_t r = 0; r < num_rows; ++r) active[r] = r;
  auto is_eos = [&](int64_t t) {
    return std::find(o.eos_token_id.begin(), o.eos_token_id.end(), t) != o.eos_token_id.end();
  };

  std::vector<double> draws;
  for (int64_t cur_len = 1; !active.empty() && cur_len < max_length; ++cur_len) {
    std::vector<int64_t> tokens(active.size());
    for (size_t i = 0; i < active.size(); ++i) tokens[i] = out.sequences[active[i]].back();
    Tensor logits = session.step(active, tokens, cur_len - 1);
    const auto count = static_cast<int64_t>(active.size());
    // The sampler's random numbers, one a row in row order; then the rows are independent
    // and run in parallel.
    draws.clear();
    if (o.do_sample)
      for (int64_t i = 0; i < count; ++i) draws.push_back(uniform(rng));
    auto choose = [&](int64_t i) {
      const int64_t r = active[static_cast<size_t>(i)];
      float* scores = logits.data<float>() + i * vocab;
      std::vector<int64_t>& seq = out.sequences[r];
      // (renormalize_logits changes neither the choice nor its log-probability here.)
      process_logits(scores, vocab, seq.data(), cur_len, settings);
      if (o.do_sample) warp_logits(scores, vocab, settings);
      // The chosen token's log-probability is its score less log Σ exp(scores), as
      // log_softmax_row gives it (a row of -inf keeps its -inf).
      const float shift = log_sum_exp_row(scores, vocab);
      int64_t token = 0;
      if (!o.do_sample) {
        token = argmax_row(scores, vocab);  // first maximum, like torch.argmax
      } else if (shift != -INFINITY) {
        thread_local std::vector<float> probs;
        probs.resize(static_cast<size_t>(vocab));
#pragma omp simd
        for (int64_t v = 0; v < vocab; ++v) probs[v] = ops::cpu::exp_nonpositive_f32(scores[v] - shift);
        token = std::max<int64_t>(WeightedDraws(probs.data(), vocab).draw(draws[static_cast<size_t>(i)]), 0);
      }
      out.scores[r] += shift == -INFINITY ? scores[token] : scores[token] - shift;
      seq.push_back(token);
    };
#pragma omp parallel for schedule(static) if (count > 1)
    for (int64_t i = 0; i < count; ++i) choose(i);
    std::vector<int64_t> still;
    for (int64_t r : active)
      if (!is_eos(out.sequences[r].back()) && cur_len + 1 < max_length) still.push_back(r);
    active.swap(still);
  }
  return out;
}

}  // namespace nle
