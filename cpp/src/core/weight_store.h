#pragma once

#include <functional>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/safetensors.h"

namespace nle {

// The weights of a model directory: model.safetensors, or the shards listed by
// model.safetensors.index.json. Lookup is by Hugging Face weight name.
//
// An overlay (set by an adapter, see core/adapter.h) replaces or adds single
// tensors: a name present in the overlay resolves to the overlay's tensor, every
// other name to its zero-copy view of the mapped files, so models loaded with
// different adapters over one base share the base's mapped pages.
class WeightStore {
 public:
  static WeightStore open_directory(const std::string& dir);

  // Makes `name` resolve to `tensor` (replacing the file's tensor, if any);
  // `source` is the file named in messages about it.
  void set_override(const std::string& name, Tensor tensor, const std::string& source);
  // Makes `name` resolve to what `make` returns, called on every get(): a tensor computed
  // from others (a merged adapter weight) exists only while its user holds it. `make` must
  // return a tensor of `dtype` and `shape`.
  void set_computed_override(const std::string& name, DType dtype, const Shape& shape,
                             const std::string& source, std::function<Tensor()> make);
  bool is_overridden(const std::string& name) const { return overrides_.count(name) != 0; }
  size_t num_overrides() const { return overrides_.size(); }

  // At least the number of tensors a name resolves to (the files' and the overlay's).
  size_t tensor_count() const { return index_.size() + overrides_.size(); }

  bool contains(const std::string& name) const;
  // Throws ModelError naming the file(s) and the tensor when it is absent.
  Tensor get(const std::string& name) const;
  const TensorInfo& info(const std::string& name) const;
  // The file that holds `name`, or the main file name when it is absent (for messages).
  const std::string& file_for(const std::string& name) const;

 private:
  struct Override {
    TensorInfo info;
    Tensor tensor;
    std::function<Tensor()> make;  // set for a computed override (tensor then undefined)
    std::string source;
  };
  std::vector<std::shared_ptr<SafetensorsFile>> files_;
  std::unordered_map<std::string, Override> overrides_;
  std::unordered_map<std::string, size_t> index_;  // name -> files_ position
  std::string description_;                        // what to name in "missing" errors
};

}  // namespace nle
