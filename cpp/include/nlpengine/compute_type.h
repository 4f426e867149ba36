// The arithmetic a loaded model uses for its matrix products.
#pragma once

#include <string>

#include "nlpengine/export.h"

namespace nle {

enum class ComputeType {
  // Exact: every product in float32 (parity with the reference within 1e-4).
  Float32,
  // Linear layers in 8-bit integers: weights quantized per output channel
  // (symmetric int8) at load, activations per row (asymmetric uint8) at each
  // call, int32 accumulation (AVX512-VNNI / AVX-VNNI), float32 everywhere else.
  Int8,
  // Linear layers with bfloat16 weights and inputs and float32 accumulation.
  BFloat16,
};

// "float32" (also "fp32", "f32", "default"), "int8", "bf16" (also "bfloat16");
// throws InvalidInputError listing the accepted names otherwise.
NLE_API ComputeType compute_type_from_name(const std::string& name);
NLE_API const char* compute_type_name(ComputeType type);

}  // namespace nle
