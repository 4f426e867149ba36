#pragma once

#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/safetensors.h"

namespace nle {

// The weights of a model directory: model.safetensors, or the shards listed by
// model.safetensors.index.json. Lookup is by Hugging Face weight name.
class WeightStore {
 public:
  static WeightStore open_directory(const std::string& dir);

  bool contains(const std::string& name) const;
  // Throws ModelError naming the file(s) and the tensor when it is absent.
  Tensor get(const std::string& name) const;
  const TensorInfo& info(const std::string& name) const;
  // The file that holds `name`, or the main file name when it is absent (for messages).
  const std::string& file_for(const std::string& name) const;

 private:
  std::vector<std::shared_ptr<SafetensorsFile>> files_;
  std::unordered_map<std::string, size_t> index_;  // name -> files_ position
  std::string description_;                        // what to name in "missing" errors
};

}  // namespace nle
