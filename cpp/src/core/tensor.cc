#include "nlpengine/tensor.h"

#include <cstdlib>
#include <cstring>
#include <limits>

#include "core/buffer_pool.h"
#include "core/half.h"

namespace nle {

std::string shape_to_string(const Shape& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i) s += ", ";
    s += std::to_string(shape[i]);
  }
  return s + "]";
}

int64_t shape_numel(const Shape& shape) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

Tensor::Tensor(DType dtype, Shape shape, Device device)
    : dtype_(dtype), device_(device), shape_(std::move(shape)) {
  if (device != Device::CPU) throw Error("Tensor: allocation on " + std::string(device_name(device)) +
                                         " is not available in this build");
  for (int64_t d : shape_)
    if (d < 0) throw InvalidInputError("Tensor: negative dimension in shape " + shape_to_string(shape_));
  // Round up to the alignment, and allocate at least one cache line so that
  // empty tensors still have a valid pointer.
  size_t bytes = (nbytes() + 63) / 64 * 64;
  if (bytes == 0) bytes = 64;
  void* p = pool_allocate(bytes);
  if (!p) throw Error("Tensor: out of memory allocating " + std::to_string(bytes) + " bytes");
  data_ = p;
  owner_ = std::shared_ptr<const void>(
      p, [bytes](const void* q) { pool_release(const_cast<void*>(q), bytes); });
}

Tensor Tensor::view(DType dtype, Shape shape, const void* data, std::shared_ptr<const void> owner,
                    Device device) {
  Tensor t;
  t.dtype_ = dtype;
  t.device_ = device;
  t.shape_ = std::move(shape);
  t.data_ = const_cast<void*>(data);
  t.owner_ = std::move(owner);
  return t;
}

Tensor Tensor::zeros(DType dtype, Shape shape) {
  Tensor t(dtype, std::move(shape));
  std::memset(t.data_, 0, t.nbytes());
  return t;
}

int64_t Tensor::dim(int i) const {
  const int r = rank();
  if (i < 0) i += r;
  if (i < 0 || i >= r)
    throw InvalidInputError("Tensor: dimension " + std::to_string(i) + " out of range for shape " +
                            shape_to_string(shape_));
  return shape_[i];
}

Tensor Tensor::reshape(Shape shape) const {
  if (shape_numel(shape) != numel())
    throw InvalidInputError("Tensor: cannot reshape " + shape_to_string(shape_) + " to " +
                            shape_to_string(shape));
  Tensor t = *this;
  t.shape_ = std::move(shape);
  return t;
}

Tensor Tensor::to_float32() const {
  Tensor out(DType::F32, shape_);
  float* dst = out.data<float>();
  const int64_t n = numel();
  switch (dtype_) {
    case DType::F32:
      std::memcpy(dst, data_, nbytes());
      break;
    case DType::BF16:
      bf16_to_float_n(dst, static_cast<const uint16_t*>(data_), n);
      break;
    case DType::F16:
      half_to_float_n(dst, static_cast<const uint16_t*>(data_), n);
      break;
    default:
      throw Error(std::string("Tensor: cannot convert ") + dtype_name(dtype_) + " to F32");
  }
  return out;
}

void Tensor::check_dtype(DType expected) const {
  if (expected != dtype_)
    throw Error(std::string("Tensor: accessed as ") + dtype_name(expected) + " but holds " +
                dtype_name(dtype_));
}

}  // namespace nle
