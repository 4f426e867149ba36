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
  // call, int32 accumulation (AVX512-VNNI / AVX-VNNI), float32 everywhere else but an
  // encoder self-attention's two products where the CPU multiplies bf16 natively
  // (AVX512-BF16): those take bf16 queries, keys, values and probabilities, with float32
  // sums and softmax.
  Int8,
  // Linear layers with bfloat16 weights and inputs and float32 accumulation; where the
  // CPU multiplies bf16 natively, an encoder self-attention's two products too, as Int8's.
  BFloat16,
  // Int8, except the products whose errors reach the residual stream undamped: each
  // self-attention's value projection (not squashed by a softmax, unlike query and key)
  // and each feed-forward's output projection (its input, after the activation, has the
  // widest outlier channels). Those run in bf16 where the CPU multiplies bf16 natively
  // (AVX512-BF16 under oneDNN, AMX under MKL), and there an encoder self-attention's
  // output projection does too, and its two products take bf16 queries, keys, values and
  // probabilities as Int8's do. Elsewhere every product runs in 16-bit
  // integers: 8-bit weights (10-bit for those two), 16-bit activations, exact int32 sums
  // (AVX2's vpmaddwd).
  Int8Mixed,
};

// "float32" (also "fp32", "f32", "default"), "int8", "bf16" (also "bfloat16"), "int8-mixed";
// throws InvalidInputError listing the accepted names otherwise.
NLE_API ComputeType compute_type_from_name(const std::string& name);
NLE_API const char* compute_type_name(ComputeType type);

}  // namespace nle
