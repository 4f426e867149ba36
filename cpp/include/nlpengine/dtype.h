#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "nlpengine/export.h"

namespace nle {

// Element types a tensor can hold. The runtime computes in F32 (BF16 and I8 for
// the fast compute types); F16, F64 and the others exist so any safetensors file
// can be described and rejected or converted with a precise message.
enum class DType : uint8_t { F32, BF16, F16, F64, I8, U8, I16, I32, I64, BOOL };

enum class Device : uint8_t { CPU, CUDA };

NLE_API size_t dtype_size(DType dtype);
// The safetensors spelling: "F32", "BF16", "I64", ...
NLE_API const char* dtype_name(DType dtype);
// Parses a safetensors dtype string; returns false for an unknown one.
NLE_API bool dtype_from_name(const std::string& name, DType* out);

NLE_API const char* device_name(Device device);

template <typename T>
constexpr DType dtype_of();
template <>
constexpr DType dtype_of<float>() { return DType::F32; }
template <>
constexpr DType dtype_of<int8_t>() { return DType::I8; }
template <>
constexpr DType dtype_of<int32_t>() { return DType::I32; }
template <>
constexpr DType dtype_of<int64_t>() { return DType::I64; }
template <>
constexpr DType dtype_of<uint16_t>() { return DType::BF16; }  // bf16 bit pattern

}  // namespace nle
