#pragma once

#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/mapped_file.h"
#include "nlpengine/tensor.h"

namespace nle {

struct TensorInfo {
  std::string name;
  DType dtype;
  Shape shape;
  size_t begin;  // byte offsets into the data area, as in the header
  size_t end;
};

// A memory-mapped .safetensors file. The constructor validates the whole header
// (JSON syntax, dtypes, shapes, byte ranges against the file size and
// tiling its data area with no overlap or gap, as the safetensors library does) and throws
// ModelError naming the file and tensor; get() then returns zero-copy views.
class SafetensorsFile {
 public:
  explicit SafetensorsFile(const std::string& path);

  const std::string& path() const { return file_->path(); }
  bool contains(const std::string& name) const { return tensors_.count(name) != 0; }
  // Throws ModelError when the tensor is absent.
  const TensorInfo& info(const std::string& name) const;
  // A view of the tensor's bytes; copied only if the data is misaligned for its dtype.
  Tensor get(const std::string& name) const;
  std::vector<std::string> names() const;
  const std::unordered_map<std::string, std::string>& metadata() const { return metadata_; }

 private:
  std::shared_ptr<MappedFile> file_;
  const uint8_t* data_begin_ = nullptr;
  size_t data_size_ = 0;
  std::unordered_map<std::string, TensorInfo> tensors_;
  std::unordered_map<std::string, std::string> metadata_;
};

}  // namespace nle
