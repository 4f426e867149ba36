#include "ops/rms_norm.h"

#include "ops/check.h"

namespace nle::ops {

void rms_norm(Tensor& y, const Tensor& x, const Tensor& weight, float eps) {
  check_cpu_f32("rms_norm", {&y, &x, &weight});
  const int64_t cols = x.dim(-1);
  if (weight.numel() != cols)
    throw InvalidInputError("rms_norm: weight " + shape_to_string(weight.shape()) + " does not match " +
                            std::to_string(cols) + " features");
  if (y.shape() != x.shape()) throw InvalidInputError("rms_norm: input and output shapes differ");
  cpu::rms_norm_f32(y.data<float>(), x.data<float>(), weight.data<float>(), cols ? x.numel() / cols : 0,
                    cols, eps);
}

}  // namespace nle::ops
