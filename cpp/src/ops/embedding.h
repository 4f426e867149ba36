// Embedding lookup: rows of a table gathered by index.
#pragma once

#include <cstdint>
#include <string>

#include "nlpengine/tensor.h"

namespace nle::ops {

// y (n, dim) = table[ids] (or += with accumulate). Throws InvalidInputError naming
// `what` when an index falls outside the table.
void embedding(Tensor& y, const Tensor& table, const int64_t* ids, int64_t n, bool accumulate,
               const std::string& what);

namespace cpu {
void embedding_f32(float* y, const float* table, const int64_t* ids, int64_t n, int64_t dim,
                   bool accumulate);
}
namespace reference {
void embedding_f32(float* y, const float* table, const int64_t* ids, int64_t n, int64_t dim,
                   bool accumulate);
}

}  // namespace nle::ops
