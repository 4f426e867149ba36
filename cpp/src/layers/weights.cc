#include "layers/weights.h"

#include "ops/int16_gemm.h"

namespace nle {

Weights Weights::error_sensitive() const {
  if (compute_type_ != ComputeType::Int8Mixed) return *this;
  if (!ops::int8_mixed_uses_int16()) return with_compute_type(ComputeType::BFloat16);
  Weights sensitive = *this;
  sensitive.error_sensitive_ = true;
  return sensitive;
}

Weights Weights::error_sensitive_where_bf16() const {
  if (compute_type_ != ComputeType::Int8Mixed || ops::int8_mixed_uses_int16()) return *this;
  return with_compute_type(ComputeType::BFloat16);
}

Tensor Weights::require(const std::string& name, const Shape& expected) const {
  const std::string full = prefix_ + name;
  const TensorInfo& info = store_.info(full);  // throws "missing tensor" naming the file
  const std::string& file = store_.file_for(full);
  if (info.dtype != DType::F32 && info.dtype != DType::F16 && info.dtype != DType::BF16)
    throw ModelError(file + ": tensor '" + full + "' has dtype " + dtype_name(info.dtype) +
                     ", expected a floating-point type (F32, F16 or BF16)");
  if (info.shape != expected)
    throw ModelError(file + ": tensor '" + full + "' has shape " + shape_to_string(info.shape) +
                     " but " + config_path_ + " implies " + shape_to_string(expected));
  Tensor t = store_.get(full);
  return t.dtype() == DType::F32 ? t : t.to_float32();
}

Tensor Weights::require_any(std::initializer_list<std::string> names, const Shape& expected) const {
  for (const auto& name : names)
    if (contains(name)) return require(name, expected);
  return require(*names.begin(), expected);
}

}  // namespace nle
