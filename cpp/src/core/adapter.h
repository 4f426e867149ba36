// LoRA adapters in the PEFT layout, merged into a base model's weights at load.
//
// An adapter directory holds adapter_config.json (peft_type "LORA", r,
// lora_alpha, target_modules, ...) and adapter_model.safetensors whose tensors
// are named as PEFT saves them:
//   base_model.model.<module>.lora_A.weight   (r, in_features)
//   base_model.model.<module>.lora_B.weight   (out_features, r)
//   base_model.model.<name>                    modules_to_save (e.g. classifier.weight)
// Names map to Hugging Face names by stripping "base_model.model.". Applying puts
// W + scaling * B·A (scaling = lora_alpha / r, or lora_alpha / sqrt(r) with
// use_rslora; computed each time a layer asks for the weight) and the
// modules_to_save tensors into the WeightStore's overlay; every other base tensor
// stays a zero-copy view of the mapped file.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "core/config.h"
#include "core/safetensors.h"
#include "core/weight_store.h"

namespace nle {

// W + scaling * B·A as a new F32 tensor; weight (out, in), a (r, in), b (out, r),
// any of F32/F16/BF16. Shapes are the caller's to validate.
Tensor merge_lora_weight(const Tensor& weight, const Tensor& a, const Tensor& b, float scaling);

class LoraAdapter {
 public:
  struct Update {
    std::string module;  // Hugging Face module path, e.g. "bert.encoder.layer.0.attention.self.query"
    std::string a_name;  // the adapter file's tensor names
    std::string b_name;
  };
  struct Saved {
    std::string name;         // Hugging Face tensor name, e.g. "classifier.weight"
    std::string source_name;  // the adapter file's tensor name
  };

  // Reads and validates adapter_config.json and adapter_model.safetensors.
  // Throws ModelError naming the file and the key or tensor.
  static LoraAdapter open_directory(const std::string& dir);

  // Merges the updates into `store` and overlays the modules_to_save tensors.
  // `model_prefix` is the base architecture's prefix ("bert.", "roberta.", ...):
  // an adapter trained on a task model applies to a bare base and vice versa.
  // Throws ModelError naming the adapter file and tensor when a target module is
  // not in the base or its shape differs.
  void apply(WeightStore& store, const std::string& model_prefix) const;

  const std::string& directory() const { return directory_; }
  const std::string& config_path() const { return config_path_; }
  const std::string& weights_path() const { return file_->path(); }
  const Config& config() const { return *config_; }
  int64_t rank() const { return r_; }
  double scaling() const { return scaling_; }
  // "TOKEN_CLS", "SEQ_CLS", ... or "" when the config has none.
  const std::string& task_type() const { return task_type_; }
  const std::vector<Update>& updates() const { return updates_; }
  const std::vector<Saved>& saved() const { return saved_; }

 private:
  std::string directory_;
  std::string config_path_;
  std::shared_ptr<Config> config_;
  std::shared_ptr<SafetensorsFile> file_;
  int64_t r_ = 0;
  double scaling_ = 1.0;
  std::string task_type_;
  std::vector<Update> updates_;
  std::vector<Saved> saved_;
};

}  // namespace nle
