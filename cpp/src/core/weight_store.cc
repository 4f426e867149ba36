#include "core/weight_store.h"

#include <sys/stat.h>

#include <fstream>
#include <map>
#include <nlohmann/json.hpp>

#include "nlpengine/errors.h"

namespace nle {

namespace {
bool is_file(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}
}  // namespace

WeightStore WeightStore::open_directory(const std::string& dir) {
  WeightStore store;
  const std::string single = dir + "/model.safetensors";
  const std::string index_path = dir + "/model.safetensors.index.json";
  std::vector<std::string> paths;
  if (is_file(single)) {
    paths.push_back(single);
    store.description_ = single;
  } else if (is_file(index_path)) {
    std::ifstream in(index_path);
    nlohmann::json index;
    try {
      index = nlohmann::json::parse(in);
    } catch (const nlohmann::json::exception& e) {
      throw ModelError(index_path + ": not valid JSON: " + e.what());
    }
    const auto map = index.find("weight_map");
    if (map == index.end() || !map->is_object())
      throw ModelError(index_path + ": missing required key 'weight_map'");
    std::map<std::string, bool> shards;
    for (auto it = map->begin(); it != map->end(); ++it) {
      if (!it->is_string()) throw ModelError(index_path + ": weight_map values must be file names");
      const std::string shard = it->get<std::string>();
      if (shard.find('/') != std::string::npos)
        throw ModelError(index_path + ": shard '" + shard + "' must be a file in the model directory");
      shards[shard] = true;
    }
    for (const auto& kv : shards) paths.push_back(dir + "/" + kv.first);
    store.description_ = index_path;
  } else {
    const bool has_bin = is_file(dir + "/pytorch_model.bin");
    throw ModelError(dir + ": no model.safetensors (or model.safetensors.index.json) in the model directory" +
                     std::string(has_bin ? "; pytorch_model.bin is not supported, re-save the model "
                                           "with save_pretrained(safe_serialization=True)"
                                         : ""));
  }
  for (const auto& path : paths) {
    auto file = std::make_shared<SafetensorsFile>(path);
    for (const auto& name : file->names()) store.index_.emplace(name, store.files_.size());
    store.files_.push_back(std::move(file));
  }
  return store;
}

void WeightStore::set_override(const std::string& name, Tensor tensor, const std::string& source) {
  Override entry;
  entry.info = TensorInfo{name, tensor.dtype(), tensor.shape(), 0, tensor.nbytes()};
  entry.tensor = std::move(tensor);
  entry.source = source;
  overrides_[name] = std::move(entry);
}

void WeightStore::set_computed_override(const std::string& name, DType dtype, const Shape& shape,
                                        const std::string& source, std::function<Tensor()> make) {
  Override entry;
  entry.info = TensorInfo{name, dtype, shape, 0, dtype_size(dtype) * static_cast<size_t>(shape_numel(shape))};
  entry.make = std::move(make);
  entry.source = source;
  overrides_[name] = std::move(entry);
}

bool WeightStore::contains(const std::string& name) const {
  return overrides_.count(name) != 0 || index_.count(name) != 0;
}

const TensorInfo& WeightStore::info(const std::string& name) const {
  const auto o = overrides_.find(name);
  if (o != overrides_.end()) return o->second.info;
  const auto it = index_.find(name);
  if (it == index_.end()) throw ModelError(description_ + ": missing tensor '" + name + "'");
  return files_[it->second]->info(name);
}

Tensor WeightStore::get(const std::string& name) const {
  const auto o = overrides_.find(name);
  if (o != overrides_.end()) return o->second.make ? o->second.make() : o->second.tensor;
  const auto it = index_.find(name);
  if (it == index_.end()) throw ModelError(description_ + ": missing tensor '" + name + "'");
  return files_[it->second]->get(name);
}

const std::string& WeightStore::file_for(const std::string& name) const {
  const auto o = overrides_.find(name);
  if (o != overrides_.end()) return o->second.source;
  const auto it = index_.find(name);
  return it == index_.end() ? description_ : files_[it->second]->path();
}

}  // namespace nle
