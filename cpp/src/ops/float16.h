// IEEE half (binary16) storage for values read far more often than written: the
// cross-attention keys and values of the fast compute types (layers/seq2seq_attention.h),
// which a decoding step otherwise streams from memory in float32.
#pragma once

#include <cstdint>

namespace nle::ops {

// out[i] = in[i] rounded to the nearest half (ties to even), saturating at ±65504 so that
// no finite value turns infinite; NaN stays NaN.
void float_to_half(uint16_t* out, const float* in, int64_t n);

}  // namespace nle::ops
