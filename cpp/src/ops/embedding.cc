#include "ops/embedding.h"

#include "ops/check.h"

namespace nle::ops {

void embedding(Tensor& y, const Tensor& table, const int64_t* ids, int64_t n, bool accumulate,
               const std::string& what) {
  check_cpu_f32("embedding", {&y, &table});
  check_rank("embedding", "table", table, 2);
  const int64_t rows = table.dim(0), dim = table.dim(1);
  if (y.numel() != n * dim)
    throw InvalidInputError("embedding: output " + shape_to_string(y.shape()) + " cannot hold " +
                            std::to_string(n) + " rows of " + std::to_string(dim));
  for (int64_t i = 0; i < n; ++i)
    if (ids[i] < 0 || ids[i] >= rows)
      throw InvalidInputError(what + " value " + std::to_string(ids[i]) + " is out of range [0, " +
                              std::to_string(rows) + ")");
  cpu::embedding_f32(y.data<float>(), table.data<float>(), ids, n, dim, accumulate);
}

}  // namespace nle::ops
