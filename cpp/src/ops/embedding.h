// Embedding lookup: rows of a table gathered by index.
#pragma once

#include <cstdint>
#include <string>

#include "nlpengine/tensor.h"

namespace nle::ops {

// y (n, dim) = table[ids] (or += with accumulate), y F32 and the table F32, F16 or BF16 (a
// checkpoint's half-precision table as stored: its rows are widened as they are read).
// Throws InvalidInputError naming `what` when an index falls outside the table.
void embedding(Tensor& y, const Tensor& table, const int64_t* ids, int64_t n, bool accumulate,
               const std::string& what);

namespace cpu {
void embedding_f32(float* y, const float* table, const int64_t* ids, int64_t n, int64_t dim,
                   bool accumulate);
// y[i] (+)= the float value of half[i] (bf16 where bf16, else IEEE half), i < n.
void widen_half_rows(float* y, const uint16_t* half, int64_t n, bool bf16, bool accumulate);
}
namespace reference {
void embedding_f32(float* y, const float* table, const int64_t* ids, int64_t n, int64_t dim,
                   bool accumulate);
}

}  // namespace nle::ops
