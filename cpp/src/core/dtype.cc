#include "nlpengine/dtype.h"

#include <cstring>

namespace nle {

namespace {
struct DTypeInfo {
  DType dtype;
  const char* name;
  size_t size;
};
constexpr DTypeInfo kDTypes[] = {
    {DType::F32, "F32", 4},  {DType::BF16, "BF16", 2}, {DType::F16, "F16", 2},
    {DType::F64, "F64", 8},  {DType::I8, "I8", 1},     {DType::U8, "U8", 1},
    {DType::I16, "I16", 2},  {DType::I32, "I32", 4},   {DType::I64, "I64", 8},
    {DType::BOOL, "BOOL", 1},
};
}  // namespace

size_t dtype_size(DType dtype) {
  for (const auto& info : kDTypes)
    if (info.dtype == dtype) return info.size;
  return 0;
}

const char* dtype_name(DType dtype) {
  for (const auto& info : kDTypes)
    if (info.dtype == dtype) return info.name;
  return "?";
}

bool dtype_from_name(const std::string& name, DType* out) {
  for (const auto& info : kDTypes) {
    if (name == info.name) {
      *out = info.dtype;
      return true;
    }
  }
  return false;
}

const char* device_name(Device device) { return device == Device::CPU ? "cpu" : "cuda"; }

}  // namespace nle
