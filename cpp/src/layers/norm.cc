#include "layers/norm.h"

#include "ops/layer_norm.h"
#include "ops/rms_norm.h"

namespace nle {

Norm::Norm(const Weights& weights, const std::string& scope, int64_t features, float eps, bool rms)
    : weight_(weights.require(scope + ".weight", {features})), eps_(eps), rms_(rms) {
  if (!rms) bias_ = weights.require(scope + ".bias", {features});
}

void Norm::operator()(Tensor& y, const Tensor& x, const Tensor* residual) const {
  if (!rms_) {
    ops::layer_norm(y, x, residual, weight_, bias_, eps_);
    return;
  }
  if (residual) {
    float* out = y.data<float>();
    const float* a = x.data<float>();
    const float* b = residual->data<float>();
    const int64_t n = x.numel();
    for (int64_t i = 0; i < n; ++i) out[i] = a[i] + b[i];
    ops::rms_norm(y, y, weight_, eps_);
  } else {
    ops::rms_norm(y, x, weight_, eps_);
  }
}

}  // namespace nle
