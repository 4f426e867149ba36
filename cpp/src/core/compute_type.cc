#include "nlpengine/compute_type.h"

#include "nlpengine/errors.h"

namespace nle {

ComputeType compute_type_from_name(const std::string& name) {
  if (name == "float32" || name == "fp32" || name == "f32" || name == "default" || name.empty())
    return ComputeType::Float32;
  if (name == "int8") return ComputeType::Int8;
  if (name == "bf16" || name == "bfloat16") return ComputeType::BFloat16;
  if (name == "int8-mixed") return ComputeType::Int8Mixed;
  throw InvalidInputError("unknown compute_type '" + name +
                          "': expected 'float32', 'int8', 'bf16' or 'int8-mixed'");
}

const char* compute_type_name(ComputeType type) {
  switch (type) {
    case ComputeType::Float32: return "float32";
    case ComputeType::Int8: return "int8";
    case ComputeType::BFloat16: return "bf16";
    case ComputeType::Int8Mixed: return "int8-mixed";
  }
  return "?";
}

}  // namespace nle
