#include "ops/hadamard.h"

#include <cmath>
#include <string>

#include "nlpengine/errors.h"

namespace nle::ops {

int64_t hadamard_block(int64_t k) {
  if (k <= 0) return 1;
  int64_t block = k & -k;  // the largest power of two dividing k
  if (block > kMaxHadamardBlock) block = kMaxHadamardBlock;
  return block < 8 ? 1 : block;
}

void hadamard_rows(float* x, int64_t rows, int64_t cols, int64_t block) {
  if (block <= 1) return;
  if ((block & (block - 1)) != 0 || cols % block != 0)
    throw InvalidInputError("hadamard_rows: a block of " + std::to_string(block) +
                            " does not divide rows of " + std::to_string(cols) +
                            " values into powers of two");
  const auto norm = static_cast<float>(1.0 / std::sqrt(static_cast<double>(block)));
  for (int64_t r = 0; r < rows; ++r) {
    float* row = x + r * cols;
    cpu::hadamard_row_unnormalized(row, cols, block);
    for (int64_t c = 0; c < cols; ++c) row[c] *= norm;
  }
}

}  // namespace nle::ops
