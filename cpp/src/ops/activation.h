// Element-wise activations, fused with the bias add that precedes them.
#pragma once

#include <cstdint>
#include <string>

#include "nlpengine/tensor.h"

namespace nle::ops {

enum class Activation {
  None,
  GeluErf,    // x · Φ(x), the exact form ("gelu")
  GeluTanh,   // tanh approximation ("gelu_new", "gelu_pytorch_tanh", "gelu_fast")
  QuickGelu,  // x · sigmoid(1.702 x)
  Relu,
  Silu,       // x · sigmoid(x) ("silu", "swish")
  Tanh,
};

// Parses a Hugging Face activation name; returns false when unknown.
bool activation_from_name(const std::string& name, Activation* out);
const char* activation_name(Activation act);

// y (rows, cols) = act(y + bias), in place; bias may be null.
void bias_activation(Tensor& y, const Tensor* bias, Activation act);

namespace cpu {
void bias_activation_f32(float* y, const float* bias, int64_t rows, int64_t cols, Activation act);
// x[i] = act(x[i]) for n values, on the calling thread (for loops that fuse it).
void activate_f32(float* x, int64_t n, Activation act);
// Whether activate_f32 computes GeluErf and GeluTanh by gelu_erf8 and gelu_tanh8
// (ops/cpu/gelu_avx2.h; x86 without AVX-512): kernels that hold their sums in AVX2
// registers may then apply them there, with the same results.
bool gelu_by_avx2();
}
namespace reference {
void bias_activation_f32(float* y, const float* bias, int64_t rows, int64_t cols, Activation act);
}

}  // namespace nle::ops
