// Beam search with the exact bookkeeping of transformers' _beam_search
// (generation/utils.py, 4.5x+): per source, the top (#eos + 1, at least 2) x
// num_beams continuations are drawn; the best num_beams that did not just stop
// continue; the top num_beams among those that stopped join the finished
// hypotheses (length-penalised); an early-stop heuristic decides when the
// finished set can no longer improve.
#include <algorithm>
#include <cmath>
#include <limits>
#include <random>

#include "generate/logits_processors.h"
#include "generate/score_cuts.h"
#include "generate/searches.h"
#include "ops/cpu/vector_math.h"

namespace nle {

namespace {

constexpr float kBig = -1.0e9f;

struct SourceState {
  std::vector<std::vector<int64_t>> running;
  std::vector<float> running_scores;
  std::vector<std::vector<int64_t>> finished;
  std::vector<float> finished_scores;
  std::vector<bool> finished_flags;
  bool improvable = true;  // transformers' is_early_stop_heuristic_unsatisfied
  bool done = false;
};

// The k best indices of values[0 .. n), best first; equal values rank by index (as a
// stable sort would). One pass keeping a small sorted list: after the first k, an element
// enters only if it beats the worst kept one, which almost none of a vocabulary-sized row
// does, so blocks whose largest value cannot enter are skipped after one vectorised max.
std::vector<int64_t> top_k_indices(const float* values, int64_t n, int64_t k) {
  constexpr int64_t kBlock = 64;
  k = std::min(k, n);
  std::vector<int64_t> best;
  if (k <= 0) return best;
  best.reserve(static_cast<size_t>(k) + 1);
  auto offer = [&](int64_t i) {
    const float v = values[i];
    if (static_cast<int64_t>(best.size()) == k) {
      // i is larger than every kept index, so a tie with the worst never beats it.
      if (!(v > values[best.back()])) return;
      best.pop_back();
    }
    auto pos = best.end();
    while (pos != best.begin() && v > values[*(pos - 1)]) --pos;
    best.insert(pos, i);
  };
  int64_t i = 0;
  for (; i < n && static_cast<int64_t>(best.size()) < k; ++i) offer(i);
  for (; i < n; i += kBlock) {
    const int64_t end = std::min(n, i + kBlock);
    float block_max = -std::numeric_limits<float>::infinity();
#pragma omp simd reduction(max : block_max)
    for (int64_t j = i; j < end; ++j) block_max = values[j] > block_max ? values[j] : block_max;
    if (!(block_max > values[best.back()])) continue;
    for (int64_t j = i; j < end; ++j) offer(j);
  }
  return best;
}

std::vector<int64_t> top_k_indices(const std::vector<float>& values, int64_t k) {
  return top_k_indices(values.data(), static_cast<int64_t>(values.size()), k);
}

// A source's best continuations at one step: indices into its (beams × vocab) scores, best
// first, and those scores.
struct Candidates {
  std::vector<int64_t> index;
  std::vector<float> score;
};

}  // namespace

SearchOutput beam_search(DecoderSession& session, int64_t num_sources, const GenerationOptions& o) {
  const int64_t vocab = session.vocab_size();
  const int64_t beams = o.num_beams;
  const int64_t max_length = o.effective_max_length();
  const int64_t n_eos = static_cast<int64_t>(o.eos_token_id.size());
  const int64_t keep = std::max<int64_t>(2, 1 + n_eos) * beams;
  const int64_t prompt_len = 1;
  const ProcessorSettings settings{&o, max_length, n_eos + 1};
  std::mt19937_64 rng(o.seed);
  std::uniform_real_distribution<double> uniform(0.0, 1.0);
  auto is_eos = [&](int64_t t) { return std::find(o.eos_token_id.begin(), o.eos_token_id.end(), t) != o.eos_token_id.end(); };

  std::vector<SourceState> states(static_cast<size_t>(num_sources));
  for (auto& st : states) {
    st.running.assign(static_cast<size_t>(beams), {o.decoder_start_token_id});
    st.running_scores.assign(static_cast<size_t>(beams), kBig);
    st.running_scores[0] = 0.f;
    st.finished = st.running;
    st.finished_scores.assign(static_cast<size_t>(beams), kBig);
    st.finished_flags.assign(static_cast<size_t>(beams), false);
  }

  std::vector<int64_t> active;
  std::vector<Candidates> candidates;
  std::vector<double> draws;  // the sampler's random numbers of a step
  for (int64_t cur_len = 1; cur_len < max_length; ++cur_len) {
    std::vector<int64_t> rows, tokens;
    active.clear();
    for (int64_t s = 0; s < num_sources; ++s) {
      if (states[s].done) continue;
      active.push_back(s);
      for (int64_t j = 0; j < beams; ++j) {
        rows.push_back(s * beams + j);
        tokens.push_back(states[s].running[j].back());
      }
    }
    if (rows.empty()) break;
    Tensor logits = session.step(rows, tokens, cur_len - 1);
    const bool last_step = cur_len + 1 >= max_length;

    // Each active source's log-probabilities, processors and top (K) continuations over
    // all its beams (or K samples without replacement). The sampler's random numbers are
    // drawn first, K a source in source order; then the sources are independent and run
    // in parallel.
    const auto num_active = static_cast<int64_t>(active.size());
    candidates.resize(static_cast<size_t>(num_active));
    draws.clear();
    if (o.do_sample)
      for (int64_t i = 0; i < num_active * keep; ++i) draws.push_back(uniform(rng));
    auto score_source = [&](int64_t block, std::vector<float>& flat) {
      const SourceState& st = states[active[static_cast<size_t>(block)]];
      flat.resize(static_cast<size_t>(beams * vocab));
      for (int64_t j = 0; j < beams; ++j) {
        float* row = logits.data<float>() + (block * beams + j) * vocab;
        log_softmax_row(row, vocab);
        process_logits(row, vocab, st.running[j].data(), cur_len, settings);
        if (o.do_sample) warp_logits(row, vocab, settings);
        if (o.renormalize_logits) log_softmax_row(row, vocab);
        const float running_score = st.running_scores[j];
        float* out = flat.data() + j * vocab;
#pragma omp simd
        for (int64_t v = 0; v < vocab; ++v) out[v] = row[v] + running_score;
      }
      std::vector<int64_t> top;
      if (o.do_sample) {
        thread_local std::vector<float> weights;
        weights.resize(flat.size());
        const auto n = static_cast<int64_t>(flat.size());
        float max_v = -std::numeric_limits<float>::infinity();
#pragma omp simd reduction(max : max_v)
        for (int64_t i = 0; i < n; ++i) max_v = flat[i] > max_v ? flat[i] : max_v;
        if (max_v != -std::numeric_limits<float>::infinity()) {
#pragma omp simd
          for (int64_t i = 0; i < n; ++i) weights[i] = flat[i] - max_v;
          ops::cpu::exp_nonpositive_f32(weights.data(), n);
          WeightedDraws sampler(weights.data(), n);
          for (int64_t k = 0; k < keep; ++k) {
            const int64_t pick = sampler.draw(draws[static_cast<size_t>(block * keep + k)]);
            if (pick < 0) break;
            top.push_back(pick);
            sampler.remove(pick);
          }
        }
      } else {
        top = top_k_indices(flat, keep);
      }
      Candidates& c = candidates[static_cast<size_t>(block)];
      c.score.resize(top.size());
      for (size_t k = 0; k < top.size(); ++k) c.score[k] = flat[static_cast<size_t>(top[k])];
      c.index = std::move(top);
    };
#pragma omp parallel if (num_active > 1)
    {
      thread_local std::vector<float> flat;
#pragma omp for schedule(static)
      for (int64_t b = 0; b < num_active; ++b) score_source(b, flat);
    }

    std::vector<int64_t> reorder_rows, reorder_parents;
    for (int64_t block = 0; block < num_active; ++block) {
      const int64_t s = active[static_cast<size_t>(block)];
      SourceState& st = states[s];
      const std::vector<int64_t>& top = candidates[static_cast<size_t>(block)].index;
      const int64_t k_count = static_cast<int64_t>(top.size());
      std::vector<float> top_scores(k_count);
      std::vector<int64_t> top_beam(k_count), top_token(k_count);
      std::vector<bool> hits(k_count);
      for (int64_t k = 0; k < k_count; ++k) {
        top_scores[k] = candidates[static_cast<size_t>(block)].score[static_cast<size_t>(k)];
        top_beam[k] = top[k] / vocab;
        top_token[k] = top[k] % vocab;
        hits[k] = last_step || is_eos(top_token[k]);
      }

      // The num_beams best continuations that did not stop go on.
      std::vector<float> running_candidates(k_count);
      for (int64_t k = 0; k < k_count; ++k) running_candidates[k] = top_scores[k] + (hits[k] ? kBig : 0.f);
      const std::vector<int64_t> next = top_k_indices(running_candidates, beams);
      std::vector<std::vector<int64_t>> new_running(static_cast<size_t>(beams));
      std::vector<float> new_running_scores(static_cast<size_t>(beams));
      for (int64_t j = 0; j < beams; ++j) {
        const int64_t k = next[j];
        new_running[j] = st.running[top_beam[k]];
        new_running[j].push_back(top_token[k]);
        new_running_scores[j] = running_candidates[k];
        reorder_rows.push_back(s * beams + j);
        reorder_parents.push_back(s * beams + top_beam[k]);
      }

      // Stopped continuations among the top num_beams join the finished set.
      const float denominator =
          static_cast<float>(std::pow(static_cast<double>(cur_len + 1 - prompt_len), o.length_penalty));
      const bool all_finished =
          std::all_of(st.finished_flags.begin(), st.finished_flags.end(), [](bool f) { return f; });
      std::vector<float> merged_scores(st.finished_scores);
      for (int64_t k = 0; k < k_count; ++k) {
        float score = top_scores[k] / denominator;
        if (all_finished && o.early_stopping == EarlyStopping::True) score += kBig;
        if (!st.improvable) score += kBig;
        if (!(hits[k] && k < beams)) score += kBig;
        merged_scores.push_back(score);
      }
      const std::vector<int64_t> best = top_k_indices(merged_scores, beams);
      std::vector<std::vector<int64_t>> new_finished(static_cast<size_t>(beams));
      std::vector<float> new_finished_scores(static_cast<size_t>(beams));
      std::vector<bool> new_flags(static_cast<size_t>(beams));
      for (int64_t j = 0; j < beams; ++j) {
        const int64_t m = best[j];
        new_finished_scores[j] = merged_scores[m];
        if (m < beams) {
          new_finished[j] = st.finished[m];
          new_flags[j] = st.finished_flags[m];
        } else {
          const int64_t k = m - beams;
          new_finished[j] = st.running[top_beam[k]];
          new_finished[j].push_back(top_token[k]);
          new_flags[j] = hits[k] && k < beams;
        }
      }
      st.running.swap(new_running);
      st.running_scores.swap(new_running_scores);
      st.finished.swap(new_finished);
      st.finished_scores.swap(new_finished_scores);
      st.finished_flags = new_flags;

      // Can the running beams still beat the worst finished one?
      const int64_t next_len = cur_len + 1;
      const int64_t best_len = (o.early_stopping == EarlyStopping::Never && o.length_penalty > 0.f)
                                   ? max_length - prompt_len
                                   : next_len - prompt_len;
      const float best_possible =
          st.running_scores[0] / static_cast<float>(std::pow(static_cast<double>(best_len), o.length_penalty));
      const float worst_finished = *std::min_element(st.finished_scores.begin(), st.finished_scores.end());
      bool any = false;
      for (int64_t j = 0; j < beams; ++j) any |= best_possible > (st.finished_flags[j] ? worst_finished : kBig);
      st.improvable = st.improvable && any;
      const bool full = std::all_of(st.finished_flags.begin(), st.finished_flags.end(), [](bool f) { return f; });
      st.done = !st.improvable || (full && o.early_stopping == EarlyStopping::True);
    }
    session.reorder(reorder_rows, reorder_parents, cur_len);
  }

  SearchOutput out;
  // transformers pads beam outputs with pad_token_id, or with the first eos
  // token when the pad id is 0 (a falsy tensor in its `pad or eos[0]`).
  if (o.eos_token_id.empty())
    out.fill_token = std::max<int64_t>(o.pad_token_id, 0);
  else
    out.fill_token = o.pad_token_id > 0 ? o.pad_token_id : o.eos_token_id[0];
  for (auto& st : states) {
    for (int64_t j = 0; j < o.num_return_sequences; ++j) {
      out.sequences.push_back(st.finished[j]);
      out.scores.push_back(st.finished_scores[j]);
    }
  }
  return out;
}

}  // namespace nle
