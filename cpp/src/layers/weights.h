#pragma once

#include <string>

#include "core/weight_store.h"
#include "nlpengine/compute_type.h"
#include "nlpengine/tensor.h"

namespace nle {

// Looks up a model's weights by Hugging Face name (under a prefix such as
// "bert." when the checkpoint is a task model) and checks each against the
// shape the config implies, so a bad checkpoint fails at load with a message
// naming the file, the tensor and both shapes.
class Weights {
 public:
  // compute_type: the arithmetic the Linear layers built from these weights use.
  Weights(const WeightStore& store, std::string prefix, std::string config_path,
          ComputeType compute_type = ComputeType::Float32)
      : store_(store),
        prefix_(std::move(prefix)),
        config_path_(std::move(config_path)),
        compute_type_(compute_type) {}

  // The F32 tensor `prefix + name` with exactly `expected` shape; F16/BF16
  // weights are converted, other dtypes are rejected.
  Tensor require(const std::string& name, const Shape& expected) const;
  // The first of `names` present (e.g. "LayerNorm.weight" / "LayerNorm.gamma").
  Tensor require_any(std::initializer_list<std::string> names, const Shape& expected) const;
  // As require and require_any, but in the checkpoint's own floating-point type (F32, F16
  // or BF16), not converted: a vocabulary's embedding table, whose rows ops::embedding
  // widens as it looks them up. Converted, an F16 or BF16 checkpoint's table was a float32
  // copy in memory for the model's lifetime (bart-base: 154 MB, twice).
  Tensor require_table(const std::string& name, const Shape& expected) const;
  Tensor require_any_table(std::initializer_list<std::string> names, const Shape& expected) const;
  bool contains(const std::string& name) const { return store_.contains(prefix_ + name); }
  // Header entry of `prefix + name`; throws ModelError naming the file when absent.
  const TensorInfo& info(const std::string& name) const { return store_.info(prefix_ + name); }
  const WeightStore& store() const { return store_; }
  const std::string& prefix() const { return prefix_; }
  ComputeType compute_type() const { return compute_type_; }
  // The same weights for Linear layers of another compute type.
  Weights with_compute_type(ComputeType type) const {
    return Weights(store_, prefix_, config_path_, type);
  }
  // The weights for the products whose errors reach the residual stream undamped (a
  // self-attention's value projection, a feed-forward's output projection): under
  // int8-mixed, bf16 where this CPU multiplies bf16 natively, else int8-mixed weights
  // marked is_error_sensitive() (their int16 products give them more bits: Linear);
  // otherwise these weights themselves.
  Weights error_sensitive() const;
  bool is_error_sensitive() const { return error_sensitive_; }
  // The weights for an encoder self-attention's output projection, which also writes to
  // the residual stream: under int8-mixed, bf16 where this CPU multiplies bf16 natively
  // (moving it there from int8, with its 8-bit activations, took the default NER model's
  // entity F1 against float32 from 0.9905 to 0.9928 and sentiment agreement from 0.9974 to
  // 0.9985 on an AMD EPYC with AVX512-BF16, for about 3% of MiniLM's throughput);
  // otherwise these weights themselves (the int16 products' 16-bit activations leave it
  // little error: 10-bit weights for it gave that F1 0.9914 against 0.9924, within noise).
  Weights error_sensitive_where_bf16() const;

 private:
  const WeightStore& store_;
  std::string prefix_;
  std::string config_path_;
  ComputeType compute_type_;
  bool error_sensitive_ = false;
};

}  // namespace nle
