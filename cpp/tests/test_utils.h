// Helpers shared by the C++ tests.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "nlpengine/tensor.h"

namespace nle::test {

// An F32 tensor of the given shape holding values.
inline Tensor tensor_from(const std::vector<float>& values, Shape shape) {
  Tensor t(DType::F32, std::move(shape));
  std::copy(values.begin(), values.end(), t.data<float>());
  return t;
}

inline std::vector<float> random_floats(size_t n, uint32_t seed, float scale = 1.f) {
  std::mt19937 gen(seed);
  std::normal_distribution<float> dist(0.f, scale);
  std::vector<float> v(n);
  for (auto& x : v) x = dist(gen);
  return v;
}

inline float max_abs_diff(const std::vector<float>& a, const std::vector<float>& b) {
  float m = 0.f;
  for (size_t i = 0; i < a.size(); ++i) m = std::max(m, std::fabs(a[i] - b[i]));
  return m;
}

// ||y - expected|| / ||expected|| over y's F32 values (as many as expected holds).
inline double relative_rms_error(const Tensor& y, const std::vector<float>& expected) {
  double ss = 0.0, expected_ss = 0.0;
  for (size_t i = 0; i < expected.size(); ++i) {
    const double d = double{y.data<float>()[i]} - expected[i];
    ss += d * d;
    expected_ss += double{expected[i]} * expected[i];
  }
  return std::sqrt(ss / expected_ss);
}

// A fresh path under the system temporary directory; whatever a test leaves there is
// removed when the test program ends.
std::string temp_path(const std::string& name);

}  // namespace nle::test
