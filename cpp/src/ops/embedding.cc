#include "ops/embedding.h"

#include <cstring>

#include "core/mapped_file.h"
#include "core/scratch_buffer.h"
#include "ops/check.h"

namespace nle::ops {

namespace {
// From this size a memory-mapped table's rows are read from its file (read_mapped_rows): a
// vocabulary's embedding (all-MiniLM-L6-v2's is 47 MB, bart-base's 154 MB) rather than a
// position or token-type table, which stays in memory. Peak RSS, AVX2-only AMD EPYC, the
// same speed: all-MiniLM-L6-v2 encoding batches of 32, 170 -> 142 MB in float32, 120 ->
// 93 MB in int8; t5-small beam 4 generation 567 -> 508 MB.
constexpr size_t kReadRowsBytes = size_t{8} << 20;
}  // namespace

void embedding(Tensor& y, const Tensor& table, const int64_t* ids, int64_t n, bool accumulate,
               const std::string& what) {
  check_cpu_f32("embedding", {&y});
  if (table.device() != Device::CPU) throw Error("embedding has no CUDA implementation yet");
  if (table.dtype() != DType::F32 && table.dtype() != DType::F16 && table.dtype() != DType::BF16)
    throw InvalidInputError(std::string("embedding: expected an F32, F16 or BF16 table, got ") +
                            dtype_name(table.dtype()));
  check_rank("embedding", "table", table, 2);
  const int64_t rows = table.dim(0), dim = table.dim(1);
  if (y.numel() != n * dim)
    throw InvalidInputError("embedding: output " + shape_to_string(y.shape()) + " cannot hold " +
                            std::to_string(n) + " rows of " + std::to_string(dim));
  for (int64_t i = 0; i < n; ++i)
    if (ids[i] < 0 || ids[i] >= rows)
      throw InvalidInputError(what + " value " + std::to_string(ids[i]) + " is out of range [0, " +
                              std::to_string(rows) + ")");
  if (table.dtype() != DType::F32) {
    // A half-precision table (F16 or BF16, as a checkpoint stores it) stays as it is: its
    // rows are gathered, from the file where it is a large mapped one, then widened.
    const size_t row_bytes = static_cast<size_t>(dim) * sizeof(uint16_t);
    thread_local ScratchBuffer<uint16_t> rows_buffer;
    uint16_t* rows = rows_buffer.get(static_cast<size_t>(n * dim));
    const auto* source = static_cast<const uint8_t*>(table.raw_data());
    if (table.nbytes() < kReadRowsBytes || !read_mapped_rows(rows, source, table.nbytes(), row_bytes, ids, n))
      for (int64_t i = 0; i < n; ++i)
        std::memcpy(rows + i * dim, source + static_cast<size_t>(ids[i]) * row_bytes, row_bytes);
    cpu::widen_half_rows(y.data<float>(), rows, n * dim, table.dtype() == DType::BF16, accumulate);
    return;
  }
  const size_t row_bytes = static_cast<size_t>(dim) * sizeof(float);
  if (!accumulate && table.nbytes() >= kReadRowsBytes &&
      read_mapped_rows(y.data<float>(), table.data<float>(), table.nbytes(), row_bytes, ids, n))
    return;
  cpu::embedding_f32(y.data<float>(), table.data<float>(), ids, n, dim, accumulate);
}

}  // namespace nle::ops
