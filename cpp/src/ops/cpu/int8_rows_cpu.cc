#include <algorithm>
#include <cmath>
#include <string>

#include "nlpengine/errors.h"
#include "ops/int8_rows.h"

namespace nle::ops {

namespace {
// One piece of d floats (x) to codes (q) and its scale: false (nothing written) if a value
// is not finite.
inline bool quantize_piece(int8_t* q, float* scale, const float* x, int64_t d) {
  float largest = 0.f, probe = 0.f;  // probe: NaN if any value is NaN or infinite
#pragma omp simd reduction(max : largest) reduction(+ : probe)
  for (int64_t i = 0; i < d; ++i) {
    largest = std::max(largest, std::fabs(x[i]));
    probe += x[i] * 0.f;
  }
  if (probe != 0.f) return false;
  const float inverse = largest > 0.f ? 127.f / largest : 0.f;
  *scale = largest / 127.f;
#pragma omp simd
  for (int64_t i = 0; i < d; ++i) q[i] = static_cast<int8_t>(std::nearbyint(x[i] * inverse));
  return true;
}
}  // namespace

void quantize_rows_int8(int8_t* out, float* scales, const float* in, int64_t rows, int64_t d) {
  int64_t bad_row = rows;  // the first row with a value that is not finite
#pragma omp parallel for schedule(static) reduction(min : bad_row) if (rows * d > (1 << 16))
  for (int64_t r = 0; r < rows; ++r)
    if (!quantize_piece(out + r * d, scales + r, in + r * d, d)) bad_row = std::min(bad_row, r);
  if (bad_row < rows)
    throw InvalidInputError("quantize_rows_int8: row " + std::to_string(bad_row) +
                            " holds a value that is not finite");
}

void quantize_rows_int8_part_major(int8_t* out, float* scales, const float* in, int64_t rows, int64_t parts,
                                   int64_t d) {
  int64_t bad = rows * parts;  // the first (row, part) with a value that is not finite, as r · parts + p
#pragma omp parallel for schedule(static) reduction(min : bad) if (rows * parts * d > (1 << 16))
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t p = 0; p < parts; ++p)
      if (!quantize_piece(out + (p * rows + r) * d, scales + p * rows + r, in + (r * parts + p) * d, d))
        bad = std::min(bad, r * parts + p);
  if (bad < rows * parts)
    throw InvalidInputError("quantize_rows_int8_part_major: row " + std::to_string(bad / parts) + ", part " +
                            std::to_string(bad % parts) + " holds a value that is not finite");
}

}  // namespace nle::ops
