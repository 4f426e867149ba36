#include "layers/weights.h"

#include "core/mapped_file.h"
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
  const Tensor t = require_table(name, expected);
  if (t.dtype() == DType::F32) return t;
  Tensor converted = t.to_float32();
  // The checkpoint's pages are read once here (each user keeps the converted copy, or what
  // it makes of it): given back, not resident beside every copy.
  release_mapped_pages(t.raw_data(), t.nbytes());
  return converted;
}

Tensor Weights::require_table(const std::string& name, const Shape& expected) const {
  const std::string full = prefix_ + name;
  const TensorInfo& info = store_.info(full);  // throws "missing tensor" naming the file
  const std::string& file = store_.file_for(full);
  if (info.dtype != DType::F32 && info.dtype != DType::F16 && info.dtype != DType::BF16)
    throw ModelError(file + ": tensor '" + full + "' has dtype " + dtype_name(info.dtype) +
                     ", expected a floating-point type (F32, F16 or BF16)");
  if (info.shape != expected)
    throw ModelError(file + ": tensor '" + full + "' has shape " + shape_to_string(info.shape) +
                     " but " + config_path_ + " implies " + shape_to_string(expected));
  return store_.get(full);
}

Tensor Weights::require_any(std::initializer_list<std::string> names, const Shape& expected) const {
  for (const auto& name : names)
    if (contains(name)) return require(name, expected);
  return require(*names.begin(), expected);
}

Tensor Weights::require_any_table(std::initializer_list<std::string> names, const Shape& expected) const {
  for (const auto& name : names)
    if (contains(name)) return require_table(name, expected);
  return require_table(*names.begin(), expected);
}

}  // namespace nle
