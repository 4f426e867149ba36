#include "core/safetensors.h"

#include <algorithm>
#include <cstring>
#include <limits>
#include <nlohmann/json.hpp>
#include <vector>

namespace nle {

namespace {

// The format caps the header at 100 MB; anything larger is a corrupt length.
constexpr uint64_t kMaxHeaderSize = 100ull * 1024 * 1024;

[[noreturn]] void fail(const std::string& path, const std::string& what) {
  throw ModelError(path + ": " + what);
}

uint64_t read_u64_le(const uint8_t* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

size_t checked_offset(const nlohmann::json& v, const std::string& path, const std::string& name) {
  if (!v.is_number_unsigned())
    fail(path, "tensor '" + name + "': data_offsets must be non-negative integers");
  return v.get<size_t>();
}

}  // namespace

SafetensorsFile::SafetensorsFile(const std::string& path)
    : file_(std::make_shared<MappedFile>(path)) {
  const size_t size = file_->size();
  const uint8_t* bytes = file_->data();
  if (size < 8)
    fail(path, "file is truncated: " + std::to_string(size) +
                   " bytes, shorter than the 8-byte header length");
  const uint64_t header_size = read_u64_le(bytes);
  if (header_size > kMaxHeaderSize)
    fail(path, "header length " + std::to_string(header_size) + " is larger than the format allows");
  if (header_size > size - 8)
    fail(path, "file is truncated: header length " + std::to_string(header_size) +
                   " exceeds the " + std::to_string(size - 8) + " bytes after the length prefix");

  nlohmann::json header;
  try {
    header = nlohmann::json::parse(bytes + 8, bytes + 8 + header_size);
  } catch (const nlohmann::json::exception& e) {
    fail(path, std::string("header is not valid JSON: ") + e.what());
  }
  if (!header.is_object()) fail(path, "header is not a JSON object");

  data_begin_ = bytes + 8 + header_size;
  data_size_ = size - 8 - header_size;

  for (auto it = header.begin(); it != header.end(); ++it) {
    const std::string& name = it.key();
    const nlohmann::json& entry = it.value();
    if (name == "__metadata__") {
      if (entry.is_object())
        for (auto m = entry.begin(); m != entry.end(); ++m)
          if (m.value().is_string()) metadata_[m.key()] = m.value().get<std::string>();
      continue;
    }
    if (!entry.is_object()) fail(path, "tensor '" + name + "': header entry is not an object");
    const auto dtype_it = entry.find("dtype");
    const auto shape_it = entry.find("shape");
    const auto offsets_it = entry.find("data_offsets");
    if (dtype_it == entry.end() || !dtype_it->is_string())
      fail(path, "tensor '" + name + "': missing or invalid 'dtype'");
    if (shape_it == entry.end() || !shape_it->is_array())
      fail(path, "tensor '" + name + "': missing or invalid 'shape'");
    if (offsets_it == entry.end() || !offsets_it->is_array() || offsets_it->size() != 2)
      fail(path, "tensor '" + name + "': 'data_offsets' must be a pair [begin, end]");

    TensorInfo info;
    info.name = name;
    const std::string dtype_str = dtype_it->get<std::string>();
    if (!dtype_from_name(dtype_str, &info.dtype))
      fail(path, "tensor '" + name + "': unsupported dtype '" + dtype_str + "'");

    uint64_t numel = 1;
    for (const auto& d : *shape_it) {
      if (!d.is_number_unsigned())
        fail(path, "tensor '" + name + "': shape entries must be non-negative integers");
      const uint64_t dim = d.get<uint64_t>();
      if (dim != 0 && numel > std::numeric_limits<uint64_t>::max() / dim)
        fail(path, "tensor '" + name + "': shape overflows");
      numel *= dim;
      info.shape.push_back(static_cast<int64_t>(dim));
    }
    info.begin = checked_offset((*offsets_it)[0], path, name);
    info.end = checked_offset((*offsets_it)[1], path, name);
    if (info.begin > info.end)
      fail(path, "tensor '" + name + "': data_offsets [" + std::to_string(info.begin) + ", " +
                     std::to_string(info.end) + "] are reversed");
    if (info.end > data_size_)
      fail(path, "tensor '" + name + "': byte range [" + std::to_string(info.begin) + ", " +
                     std::to_string(info.end) + "] falls outside the data area of " +
                     std::to_string(data_size_) + " bytes (file truncated or corrupt)");
    const uint64_t elem = dtype_size(info.dtype);
    if (numel > std::numeric_limits<uint64_t>::max() / elem ||
        numel * elem != info.end - info.begin)
      fail(path, "tensor '" + name + "': byte range holds " + std::to_string(info.end - info.begin) +
                     " bytes but dtype " + dtype_str + " and shape " +
                     shape_to_string(info.shape) + " need " + std::to_string(numel * elem));
    tensors_.emplace(name, std::move(info));
  }

  // As the safetensors library checks: the byte ranges, in order, tile the data area from
  // its first byte to its last, with no overlap (two tensors reading the same bytes), gap
  // or trailing bytes. Each range being in bounds and of the right size is not enough: a
  // corrupt header can shift one onto its neighbour and load wrong weights.
  std::vector<const TensorInfo*> ordered;
  ordered.reserve(tensors_.size());
  for (const auto& kv : tensors_) ordered.push_back(&kv.second);
  std::sort(ordered.begin(), ordered.end(), [](const TensorInfo* a, const TensorInfo* b) {
    return a->begin != b->begin ? a->begin < b->begin : a->end < b->end;
  });
  size_t covered = 0;
  const TensorInfo* previous = nullptr;
  for (const TensorInfo* t : ordered) {
    const std::string range =
        "data_offsets [" + std::to_string(t->begin) + ", " + std::to_string(t->end) + "]";
    if (t->begin < covered)
      fail(path, "tensor '" + t->name + "': " + range + " overlap tensor '" + previous->name +
                     "', which ends at " + std::to_string(covered));
    if (t->begin > covered)
      fail(path,
           "tensor '" + t->name + "': " + range + " start " + std::to_string(t->begin - covered) +
               " bytes after " +
               (previous ? "tensor '" + previous->name + "' ends" : std::string("the data area begins")) +
               ": the tensors' ranges must follow each other with no gap");
    covered = t->end;
    previous = t;
  }
  if (covered != data_size_)
    fail(path, "the data area has " + std::to_string(data_size_ - covered) + " bytes after its last tensor" +
                   (previous ? " '" + previous->name + "'" : std::string()) + " (corrupt header or file)");
}

const TensorInfo& SafetensorsFile::info(const std::string& name) const {
  const auto it = tensors_.find(name);
  if (it == tensors_.end()) fail(path(), "missing tensor '" + name + "'");
  return it->second;
}

Tensor SafetensorsFile::get(const std::string& name) const {
  const TensorInfo& ti = info(name);
  const uint8_t* p = data_begin_ + ti.begin;
  const size_t align = dtype_size(ti.dtype);
  if (reinterpret_cast<uintptr_t>(p) % align == 0)
    return Tensor::view(ti.dtype, ti.shape, p, file_);
  // The format does not promise alignment; copy the rare misaligned tensor.
  Tensor copy(ti.dtype, ti.shape);
  std::memcpy(copy.raw_data(), p, ti.end - ti.begin);
  return copy;
}

std::vector<std::string> SafetensorsFile::names() const {
  std::vector<std::string> out;
  out.reserve(tensors_.size());
  for (const auto& kv : tensors_) out.push_back(kv.first);
  return out;
}

}  // namespace nle
