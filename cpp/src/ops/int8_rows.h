// int8 storage, one scale per row, for values read far more often than written: the
// cross-attention keys and values of the int8 compute type (layers/seq2seq_attention.h),
// which every decoding step streams from memory, half the bytes of IEEE half.
#pragma once

#include <cstdint>

namespace nle::ops {

// Each of `rows` rows of d floats (in, contiguous) to d int8 codes (out) and one scale
// (scales[r]), symmetric: scale = max |x| / 127, code = x / scale rounded to the nearest
// (ties to even), so that code · scale is x within scale / 2. A row of zeros gets scale 0.
// Non-finite values are an error (InvalidInputError naming the row).
void quantize_rows_int8(int8_t* out, float* scales, const float* in, int64_t rows, int64_t d);

// quantize_rows_int8 over the `parts` pieces of d floats of each of `rows` rows of in
// (rows, parts · d), the codes and scales written part-major: piece p of row r to
// out + (p · rows + r) · d and scales[p · rows + r] (the same codes and scales), so that
// a projection's heads come out contiguous without a float copy in between. A non-finite
// value is an InvalidInputError naming the row and part.
void quantize_rows_int8_part_major(int8_t* out, float* scales, const float* in, int64_t rows, int64_t parts,
                                   int64_t d);

}  // namespace nle::ops
