#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "nlpengine/dtype.h"
#include "nlpengine/errors.h"
#include "nlpengine/export.h"

namespace nle {

using Shape = std::vector<int64_t>;

NLE_API std::string shape_to_string(const Shape& shape);
NLE_API int64_t shape_numel(const Shape& shape);

// A dense, row-major tensor. Storage is shared: copies of a Tensor are views of
// the same memory, and a view of mapped weights keeps the mapping alive.
class NLE_API Tensor {
 public:
  Tensor() = default;
  // Allocates uninitialised, 64-byte aligned storage.
  Tensor(DType dtype, Shape shape, Device device = Device::CPU);
  // Wraps memory owned by `owner` (no copy).
  static Tensor view(DType dtype, Shape shape, const void* data, std::shared_ptr<const void> owner,
                     Device device = Device::CPU);
  static Tensor zeros(DType dtype, Shape shape);

  DType dtype() const { return dtype_; }
  Device device() const { return device_; }
  const Shape& shape() const { return shape_; }
  int rank() const { return static_cast<int>(shape_.size()); }
  // dim(-1) is the last dimension.
  int64_t dim(int i) const;
  int64_t numel() const { return shape_numel(shape_); }
  size_t nbytes() const { return static_cast<size_t>(numel()) * dtype_size(dtype_); }
  bool empty() const { return data_ == nullptr && numel() == 0; }
  bool defined() const { return static_cast<bool>(owner_); }

  template <typename T>
  T* data() {
    check_dtype(dtype_of<T>());
    return static_cast<T*>(data_);
  }
  template <typename T>
  const T* data() const {
    check_dtype(dtype_of<T>());
    return static_cast<const T*>(data_);
  }
  void* raw_data() { return data_; }
  const void* raw_data() const { return data_; }
  const std::shared_ptr<const void>& owner() const { return owner_; }

  // Same storage, new shape with the same number of elements.
  Tensor reshape(Shape shape) const;
  // A deep copy converted to F32 (from F32, F16 or BF16).
  Tensor to_float32() const;

 private:
  void check_dtype(DType expected) const;

  DType dtype_ = DType::F32;
  Device device_ = Device::CPU;
  Shape shape_;
  void* data_ = nullptr;
  std::shared_ptr<const void> owner_;
};

}  // namespace nle
