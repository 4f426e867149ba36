// The score adjustments of transformers' generate(), in its order:
// repetition penalty, no-repeat n-grams, bad words, min length, min new tokens,
// forced BOS, forced EOS, suppressed tokens, tokens suppressed at the first step;
// then, when sampling, temperature, top-k and top-p; then, with
// renormalize_logits, a log-softmax (the searches apply that last one).
#pragma once

#include <cstdint>
#include <vector>

#include "nlpengine/generation.h"

namespace nle {

struct ProcessorSettings {
  const GenerationOptions* options;
  int64_t max_length;         // effective decoder length limit
  int64_t min_tokens_to_keep;  // top-k/top-p floor: 1, or (#eos + 1) in beam search
};

// scores: one row of vocab_size for a hypothesis whose tokens so far are
// tokens[0 .. cur_len) (starting with the decoder start token).
void process_logits(float* scores, int64_t vocab_size, const int64_t* tokens, int64_t cur_len,
                    const ProcessorSettings& settings);
// Temperature, top-k and top-p (only applied when sampling).
void warp_logits(float* scores, int64_t vocab_size, const ProcessorSettings& settings);

// In place: x = log_softmax(x) = x - log_sum_exp_row(x) (unchanged when every x is -inf).
void log_softmax_row(float* x, int64_t n);
// log Σ exp(x[i]) = max + log Σ exp(x[i] - max), the sum in double; -inf when every x is
// -inf. A greedy step needs only this of the chosen token's log-probability.
float log_sum_exp_row(const float* x, int64_t n);
// The index of the first largest x, as torch.argmax picks it; NaN never wins (0 when every
// x is NaN).
int64_t argmax_row(const float* x, int64_t n);

}  // namespace nle
