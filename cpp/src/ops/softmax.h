// Softmax over the last dimension with an optional key mask.
#pragma once

#include <cstdint>

#include "nlpengine/tensor.h"

namespace nle::ops {

// y (rows, cols) = softmax(x) along cols. With a mask, row r uses mask row
// r / rows_per_mask_row (so a (batch, keys) mask broadcasts over heads and
// queries, as Hugging Face's attention mask does); masked keys get probability 0
// and a row whose keys are all masked is all zeros. y may alias x.
void softmax(Tensor& y, const Tensor& x, const Tensor* mask = nullptr, int64_t rows_per_mask_row = 1);

namespace cpu {
void softmax_f32(float* y, const float* x, const uint8_t* mask, int64_t rows, int64_t cols,
                 int64_t rows_per_mask_row);
// One row, no mask, in place; for callers already inside a parallel region.
void softmax_row_f32(float* x, int64_t cols);
// The rows of a contiguous (rows, cols) block, no mask, in place, left unnormalised:
// x[r,c] = exp(x[r,c] - max_c x[r,c]) and inv_sum[r] = 1 / Σ_c x[r,c] afterwards, so that
// a caller multiplying the block by another matrix scales the (shorter) product rows
// instead. The exponentials run as one pass over the whole block, not row by row: rows of
// attention scores are short (a sentence's length), and row by row the dependent chain of
// max, exp and sum leaves the vector units idle (on an AMD EPYC, blocks of 16 to 128
// keys ran 2.3x to 1.3x faster this way). For callers already inside a parallel region.
void softmax_rows_unnormalized_f32(float* x, float* inv_sum, int64_t rows, int64_t cols);
}  // namespace cpu
namespace reference {
void softmax_f32(float* y, const float* x, const uint8_t* mask, int64_t rows, int64_t cols,
                 int64_t rows_per_mask_row);
}

}  // namespace nle::ops
