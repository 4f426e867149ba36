// A weight's rows as float32 whatever floating-point type it is stored in (F32, or a
// checkpoint's F16 or BF16), for the conversions made once at load (quantization,
// smoothing scales): read a row at a time, a half-precision weight never exists whole in
// float32.
#pragma once

#include <cstdint>
#include <string>

#include "core/half.h"
#include "nlpengine/errors.h"
#include "nlpengine/tensor.h"

namespace nle::ops {

// Throws InvalidInputError naming `op` unless w is a CPU tensor of F32, F16 or BF16.
inline void check_float_weight(const char* op, const Tensor& w) {
  if (w.device() != Device::CPU) throw Error(std::string(op) + " has no CUDA implementation yet");
  if (w.dtype() != DType::F32 && w.dtype() != DType::F16 && w.dtype() != DType::BF16)
    throw InvalidInputError(std::string(op) + ": expected an F32, F16 or BF16 weight, got " +
                            dtype_name(w.dtype()));
}

// Row r of a 2-D weight (checked by check_float_weight) as float32: in place for F32, else
// widened into buffer (room for a row).
inline const float* weight_row_f32(const Tensor& w, int64_t r, float* buffer) {
  const int64_t k = w.dim(1);
  if (w.dtype() == DType::F32) return w.data<float>() + r * k;
  const auto* row = static_cast<const uint16_t*>(w.raw_data()) + r * k;
  if (w.dtype() == DType::BF16)
    bf16_to_float_n(buffer, row, k);
  else
    half_to_float_n(buffer, row, k);
  return buffer;
}

// Where row `begin` of a 2-D weight starts, and the bytes of rows [begin, end): what
// release_mapped_pages gives back once they are read.
inline const void* weight_rows_data(const Tensor& w, int64_t begin) {
  return static_cast<const uint8_t*>(w.raw_data()) +
         static_cast<size_t>(begin * w.dim(1)) * dtype_size(w.dtype());
}
inline size_t weight_rows_bytes(const Tensor& w, int64_t begin, int64_t end) {
  return static_cast<size_t>((end - begin) * w.dim(1)) * dtype_size(w.dtype());
}

}  // namespace nle::ops
