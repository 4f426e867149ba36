#include "ops/activation.h"

#include "ops/check.h"

namespace nle::ops {

namespace {
struct Named {
  const char* name;
  Activation act;
};
constexpr Named kNames[] = {
    {"gelu", Activation::GeluErf},           {"gelu_python", Activation::GeluErf},
    {"gelu_new", Activation::GeluTanh},      {"gelu_pytorch_tanh", Activation::GeluTanh},
    {"gelu_fast", Activation::GeluTanh},     {"quick_gelu", Activation::QuickGelu},
    {"relu", Activation::Relu},              {"silu", Activation::Silu},
    {"swish", Activation::Silu},             {"tanh", Activation::Tanh},
    {"linear", Activation::None},
};
}  // namespace

bool activation_from_name(const std::string& name, Activation* out) {
  for (const auto& n : kNames) {
    if (name == n.name) {
      *out = n.act;
      return true;
    }
  }
  return false;
}

const char* activation_name(Activation act) {
  for (const auto& n : kNames)
    if (n.act == act) return n.name;
  return "none";
}

void bias_activation(Tensor& y, const Tensor* bias, Activation act) {
  check_cpu_f32("bias_activation", {&y});
  const int64_t cols = y.dim(-1);
  const int64_t rows = cols == 0 ? 0 : y.numel() / cols;
  if (bias) {
    check_cpu_f32("bias_activation", {bias});
    if (bias->numel() != cols)
      throw InvalidInputError("bias_activation: bias of shape " + shape_to_string(bias->shape()) +
                              " does not match rows of " + std::to_string(cols));
  }
  cpu::bias_activation_f32(y.data<float>(), bias ? bias->data<float>() : nullptr, rows, cols, act);
}

}  // namespace nle::ops
