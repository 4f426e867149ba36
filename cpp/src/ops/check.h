// Argument checks shared by the ops' validating entry points.
#pragma once

#include <initializer_list>
#include <string>

#include "nlpengine/tensor.h"

namespace nle::ops {

inline void check_cpu_f32(const char* op, std::initializer_list<const Tensor*> tensors) {
  for (const Tensor* t : tensors) {
    if (t->device() != Device::CPU)
      throw Error(std::string(op) + " has no CUDA implementation yet");
    if (t->dtype() != DType::F32)
      throw InvalidInputError(std::string(op) + ": expected F32 tensors, got " + dtype_name(t->dtype()));
  }
}

inline void check_rank(const char* op, const char* name, const Tensor& t, int rank) {
  if (t.rank() != rank)
    throw InvalidInputError(std::string(op) + ": '" + name + "' must have rank " +
                            std::to_string(rank) + ", got shape " + shape_to_string(t.shape()));
}

}  // namespace nle::ops
