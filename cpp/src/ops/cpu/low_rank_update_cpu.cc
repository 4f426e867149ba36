#include <algorithm>

#include "ops/low_rank_update.h"

namespace nle::ops {

// A row at a time, 32 columns at a time: the 32 sums stay in registers across the rank and
// each step reads one row of a, which for a LoRA rank (4 to 64) and a block this narrow is
// in L1. Through the GEMM library instead, the first merge of a process paid for the
// library generating its float32 kernels: all-MiniLM-L6-v2 with the default NER adapter
// (36 weights of rank 16) spent 20 ms of its 100 ms load there.
void add_low_rank_product(float* out, const float* w, const float* b, const float* a, int64_t rows,
                          int64_t cols, int64_t rank, float scaling) {
  constexpr int64_t kBlock = 32;
#pragma omp parallel for schedule(static) if (rows * cols * rank > (int64_t{1} << 18))
  for (int64_t r = 0; r < rows; ++r) {
    const float* w_row = w + r * cols;
    const float* b_row = b + r * rank;
    float* out_row = out + r * cols;
    int64_t c = 0;
    for (; c + kBlock <= cols; c += kBlock) {
      float sum[kBlock] = {};
      for (int64_t j = 0; j < rank; ++j) {
        const float coefficient = b_row[j];
        const float* a_block = a + j * cols + c;
        for (int64_t t = 0; t < kBlock; ++t) sum[t] += coefficient * a_block[t];
      }
      for (int64_t t = 0; t < kBlock; ++t) out_row[c + t] = w_row[c + t] + scaling * sum[t];
    }
    for (; c < cols; ++c) {
      float sum = 0.f;
      for (int64_t j = 0; j < rank; ++j) sum += b_row[j] * a[j * cols + c];
      out_row[c] = w_row[c] + scaling * sum;
    }
  }
}

}  // namespace nle::ops
