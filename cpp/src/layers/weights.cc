#include "layers/weights.h"

namespace nle {

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
