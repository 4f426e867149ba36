#include "core/adapter.h"

#include <sys/stat.h>

#include <cmath>
#include <map>
#include <regex>

#include "core/mapped_file.h"
#include "nlpengine/errors.h"
#include "ops/low_rank_update.h"

namespace nle {

namespace {

const std::string kPeftPrefix = "base_model.model.";
const std::string kLoraA = ".lora_A.weight";
const std::string kLoraB = ".lora_B.weight";

bool is_file(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

bool is_directory(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

bool starts_with(const std::string& s, const std::string& prefix) {
  return s.size() >= prefix.size() && s.compare(0, prefix.size(), prefix) == 0;
}

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

bool is_float(DType dtype) { return dtype == DType::F32 || dtype == DType::F16 || dtype == DType::BF16; }

// The F32 contents of `t` (a view when it already is F32).
Tensor as_f32(const Tensor& t) { return t.dtype() == DType::F32 ? t : t.to_float32(); }

// True when a config flag is set to anything but false/null/empty.
bool flag_set(const nlohmann::json& json, const std::string& key) {
  const auto it = json.find(key);
  if (it == json.end() || it->is_null()) return false;
  if (it->is_boolean()) return it->get<bool>();
  if (it->is_object() || it->is_array() || it->is_string()) return !it->empty();
  return true;
}

// PEFT's module matching: a list entry matches the module with that name or
// ending in "." + entry; a string is a regular expression the whole name must match.
class TargetMatcher {
 public:
  TargetMatcher(const Config& config) : path_(config.path()) {
    const auto it = config.json().find("target_modules");
    if (it == config.json().end() || it->is_null()) return;  // not checked
    if (it->is_string()) {
      pattern_text_ = it->get<std::string>();
      if (pattern_text_ == "all-linear") return;
      try {
        pattern_ = std::regex(pattern_text_, std::regex::ECMAScript);
      } catch (const std::regex_error& e) {
        throw ModelError(path_ + ": 'target_modules' is not a usable regular expression: " + e.what());
      }
      has_pattern_ = true;
      return;
    }
    if (!it->is_array()) throw ModelError(path_ + ": 'target_modules' must be a list of module names or a string");
    for (const auto& v : *it) {
      if (!v.is_string()) throw ModelError(path_ + ": 'target_modules' entries must be strings");
      names_.push_back(v.get<std::string>());
    }
    has_list_ = true;
  }

  bool matches(const std::string& module) const {
    if (has_pattern_) return std::regex_match(module, pattern_);
    if (!has_list_) return true;
    for (const auto& t : names_)
      if (module == t || ends_with(module, "." + t)) return true;
    return false;
  }

  std::string describe() const {
    if (has_pattern_) return "'" + pattern_text_ + "'";
    std::string out = "[";
    for (size_t i = 0; i < names_.size(); ++i) out += (i ? ", '" : "'") + names_[i] + "'";
    return out + "]";
  }

 private:
  std::string path_;
  bool has_list_ = false;
  bool has_pattern_ = false;
  std::string pattern_text_;
  std::regex pattern_;
  std::vector<std::string> names_;
};

// The base tensor `name` refers to: the name itself, or with the architecture's
// prefix removed or added (adapters trained on task models over bare bases and
// the other way round). "" when the base has neither.
std::string resolve(const WeightStore& store, const std::string& name, const std::string& prefix) {
  if (store.contains(name)) return name;
  if (prefix.empty()) return "";
  if (starts_with(name, prefix) && store.contains(name.substr(prefix.size())))
    return name.substr(prefix.size());
  if (store.contains(prefix + name)) return prefix + name;
  return "";
}

}  // namespace

Tensor merge_lora_weight(const Tensor& weight, const Tensor& a, const Tensor& b, float scaling) {
  const int64_t out = weight.dim(0), in = weight.dim(1), r = a.dim(0);
  Tensor merged(DType::F32, {out, in});
  const Tensor w32 = as_f32(weight), a32 = as_f32(a), b32 = as_f32(b);
  ops::add_low_rank_product(merged.data<float>(), w32.data<float>(), b32.data<float>(), a32.data<float>(),
                            out, in, r, scaling);
  return merged;
}

LoraAdapter LoraAdapter::open_directory(const std::string& dir) {
  if (!is_directory(dir)) throw ModelError(dir + ": adapter directory does not exist or is not a directory");
  LoraAdapter adapter;
  adapter.directory_ = dir;
  adapter.config_path_ = dir + "/adapter_config.json";
  if (!is_file(adapter.config_path_))
    throw ModelError(adapter.config_path_ + ": no adapter_config.json in the adapter directory");
  adapter.config_ = std::make_shared<Config>(Config::from_file(adapter.config_path_));
  const Config& c = *adapter.config_;
  const std::string& cp = adapter.config_path_;

  const std::string peft_type = c.get_string("peft_type");
  if (peft_type != "LORA")
    throw ModelError(cp + ": 'peft_type' is '" + peft_type + "'; only LORA adapters are supported");
  adapter.task_type_ = c.get_string("task_type", "");
  const int64_t r = c.get_int("r");
  if (r < 1) throw ModelError(cp + ": 'r' must be positive, got " + std::to_string(r));
  const double alpha = c.get_float("lora_alpha", 8.0);
  const bool rslora = c.get_bool("use_rslora", false);
  adapter.r_ = r;
  adapter.scaling_ = rslora ? alpha / std::sqrt(static_cast<double>(r)) : alpha / static_cast<double>(r);
  if (c.get_bool("use_dora", false))
    throw ModelError(cp + ": 'use_dora' is true; DoRA adapters are not supported (merge them with PEFT's "
                          "merge_and_unload and load the merged model instead)");
  if (c.get_string("bias", "none") != "none")
    throw ModelError(cp + ": 'bias' is '" + c.get_string("bias") + "'; only \"none\" is supported");
  if (c.get_bool("lora_bias", false)) throw ModelError(cp + ": 'lora_bias' is true; not supported");
  if (c.get_bool("fan_in_fan_out", false))
    throw ModelError(cp + ": 'fan_in_fan_out' is true; only Linear layers (fan_in_fan_out false) are supported");
  for (const char* key : {"rank_pattern", "alpha_pattern"})
    if (flag_set(c.json(), key))
      throw ModelError(cp + ": '" + key + "' is set; per-module ranks and alphas are not supported");
  const TargetMatcher targets(c);

  const std::string weights_path = dir + "/adapter_model.safetensors";
  if (!is_file(weights_path))
    throw ModelError(weights_path + ": no adapter_model.safetensors in the adapter directory" +
                     std::string(is_file(dir + "/adapter_model.bin")
                                     ? "; adapter_model.bin is not supported, re-save the adapter with "
                                       "save_pretrained(safe_serialization=True)"
                                     : ""));
  adapter.file_ = std::make_shared<SafetensorsFile>(weights_path);
  const SafetensorsFile& file = *adapter.file_;

  std::map<std::string, std::pair<std::string, std::string>> pairs;  // module -> (A name, B name)
  for (const auto& name : file.names()) {
    if (!starts_with(name, kPeftPrefix))
      throw ModelError(weights_path + ": tensor '" + name + "' does not start with '" + kPeftPrefix +
                       "' as PEFT names adapter tensors");
    const TensorInfo& info = file.info(name);
    if (!is_float(info.dtype))
      throw ModelError(weights_path + ": tensor '" + name + "' has dtype " + dtype_name(info.dtype) +
                       ", expected a floating-point type (F32, F16 or BF16)");
    const std::string stripped = name.substr(kPeftPrefix.size());
    if (ends_with(stripped, kLoraA)) {
      pairs[stripped.substr(0, stripped.size() - kLoraA.size())].first = name;
    } else if (ends_with(stripped, kLoraB)) {
      pairs[stripped.substr(0, stripped.size() - kLoraB.size())].second = name;
    } else if (stripped.find("lora_") != std::string::npos) {
      throw ModelError(weights_path + ": tensor '" + name +
                       "' is a LoRA tensor of a kind that is not supported (only Linear lora_A/lora_B)");
    } else {
      adapter.saved_.push_back(Saved{stripped, name});
    }
  }
  for (const auto& kv : pairs) {
    const std::string& module = kv.first;
    const std::string a_name = kPeftPrefix + module + kLoraA;
    const std::string b_name = kPeftPrefix + module + kLoraB;
    if (kv.second.first.empty())
      throw ModelError(weights_path + ": missing tensor '" + a_name + "' (the pair of '" + b_name + "')");
    if (kv.second.second.empty())
      throw ModelError(weights_path + ": missing tensor '" + b_name + "' (the pair of '" + a_name + "')");
    if (!targets.matches(module))
      throw ModelError(weights_path + ": tensor '" + a_name + "' adapts module '" + module +
                       "', which the target_modules " + targets.describe() + " of " + cp + " do not name");
    const Shape& a = file.info(a_name).shape;
    const Shape& b = file.info(b_name).shape;
    if (a.size() != 2 || a[0] != r)
      throw ModelError(weights_path + ": tensor '" + a_name + "' has shape " + shape_to_string(a) +
                       " but " + cp + " has r=" + std::to_string(r) + " (expected (r, in_features))");
    if (b.size() != 2 || b[1] != r)
      throw ModelError(weights_path + ": tensor '" + b_name + "' has shape " + shape_to_string(b) +
                       " but " + cp + " has r=" + std::to_string(r) + " (expected (out_features, r))");
    adapter.updates_.push_back(Update{module, a_name, b_name});
  }
  return adapter;
}

void LoraAdapter::apply(WeightStore& store, const std::string& model_prefix) const {
  const std::string& path = file_->path();
  // Resolve and validate everything before touching the store.
  std::vector<std::string> targets(updates_.size());
  for (size_t i = 0; i < updates_.size(); ++i) {
    const Update& u = updates_[i];
    const std::string target = resolve(store, u.module + ".weight", model_prefix);
    if (target.empty())
      throw ModelError(path + ": tensor '" + u.a_name + "' adapts module '" + u.module +
                       "', but the base model has no tensor '" + u.module + ".weight' (unknown target module)");
    const TensorInfo& w = store.info(target);
    const Shape& a = file_->info(u.a_name).shape;
    const Shape& b = file_->info(u.b_name).shape;
    if (!is_float(w.dtype))
      throw ModelError(store.file_for(target) + ": tensor '" + target + "' has dtype " + dtype_name(w.dtype) +
                       ", expected a floating-point type");
    if (w.shape.size() != 2 || w.shape[0] != b[0] || w.shape[1] != a[1])
      throw ModelError(path + ": tensors '" + u.a_name + "' " + shape_to_string(a) + " and '" + u.b_name +
                       "' " + shape_to_string(b) + " do not fit base tensor '" + target + "' of shape " +
                       shape_to_string(w.shape) + " in " + store.file_for(target));
    targets[i] = target;
  }
  std::vector<std::string> saved_targets(saved_.size());
  for (size_t i = 0; i < saved_.size(); ++i) {
    const Saved& s = saved_[i];
    const std::string target = resolve(store, s.name, model_prefix);
    if (!target.empty()) {
      const Shape& base = store.info(target).shape;
      const Shape& mine = file_->info(s.source_name).shape;
      // A classifier may change its label count; anything else must keep its shape.
      const bool may_resize = base.size() == mine.size() && base.size() >= 1 &&
                              std::equal(base.begin() + 1, base.end(), mine.begin() + 1);
      if (base != mine && !may_resize)
        throw ModelError(path + ": tensor '" + s.source_name + "' has shape " + shape_to_string(mine) +
                         " but base tensor '" + target + "' in " + store.file_for(target) + " has shape " +
                         shape_to_string(base));
    }
    saved_targets[i] = target.empty() ? s.name : target;
  }
  // Merged when a layer asks for the weight, not here: the layer keeps what it makes of it
  // (packed, quantized) and the merged copy goes back to the buffer pool for the next
  // weight of its size. Merged here, all 36 of all-MiniLM-L6-v2's stayed in the overlay for
  // the model's lifetime (40 MB, each page faulted in afresh at load), and so did the 40 MB
  // of base pages they were read from.
  for (size_t i = 0; i < updates_.size(); ++i) {
    const Update& u = updates_[i];
    const Tensor base = store.get(targets[i]), a = file_->get(u.a_name), b = file_->get(u.b_name);
    const auto scaling = static_cast<float>(scaling_);
    store.set_computed_override(targets[i], DType::F32, base.shape(), path, [base, a, b, scaling] {
      Tensor merged = merge_lora_weight(base, a, b, scaling);
      // The base weight's pages are read once per merge; a later merge reads them again.
      release_mapped_pages(base.raw_data(), base.nbytes());
      return merged;
    });
  }
  for (size_t i = 0; i < saved_.size(); ++i)
    store.set_override(saved_targets[i], file_->get(saved_[i].source_name), path);
}

}  // namespace nle
