// The encoder runtime: BERT-family checkpoints in Hugging Face layout.
//
//   auto model = nle::EncoderModel::load("path/to/model");
//   nle::EncoderOutput out = model->encode(ids, mask, nullptr, batch, seq);
//
// A loaded model is immutable; encode() may be called from many threads at once.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "nlpengine/compute_type.h"
#include "nlpengine/export.h"
#include "nlpengine/tensor.h"

namespace nle {

struct LoadOptions {
  // Intra-op threads for this model's load and calls; 0 uses every CPU this process may
  // run on (its affinity mask, capped by its cgroup CPU quota), and more is cut to that.
  // Work on more than one thread runs on the runtime's compute threads, whichever thread
  // calls (core/compute_threads.h): a model loaded on one thread and called from others
  // keeps one OpenMP pool.
  int num_threads = 0;
  // A PEFT LoRA adapter directory (adapter_config.json + adapter_model.safetensors)
  // merged into the base weights at load; empty for none. Its config.json, when
  // present, supplies the task head's keys (architectures, id2label, label2id,
  // num_labels, problem_type); the encoder's config always comes from the base.
  std::string adapter_directory;
  // The arithmetic of the Linear layers (task heads stay float32).
  ComputeType compute_type = ComputeType::Float32;
};

// What a caller may want to know about a loaded encoder.
struct EncoderInfo {
  std::string model_type;  // "bert", "roberta", "xlm-roberta", "distilbert", "electra", ...
  int64_t vocab_size;
  int64_t hidden_size;
  int64_t num_layers;
  int64_t num_heads;
  int64_t intermediate_size;
  int64_t max_sequence_length;  // longest input the position embeddings allow
  int64_t type_vocab_size;      // 0 when the model takes no token type ids
  int64_t pad_token_id;
  bool has_pooler;
  // "sequence_classification", "token_classification", "question_answering"
  // (span start/end logits), or "none" for a bare encoder; chosen by config.json's
  // "architectures".
  std::string head;
  int64_t num_labels;  // 0 without a head
};

struct EncoderOutput {
  // (batch, seq, hidden) F32; rows where attention_mask is 0 are zeros.
  Tensor last_hidden_state;
  // (batch, hidden) F32 = tanh(dense(first token)); undefined without a pooler.
  Tensor pooler_output;
  // The head's logits: (batch, seq, labels) for token classification and
  // (batch, seq, 2) start/end logits for question answering (zeros where
  // attention_mask is 0), (batch, labels) for sequence classification; undefined
  // without a head.
  Tensor logits;
};

class NLE_API EncoderModel {
 public:
  // Maps model.safetensors (or its shards) and validates every tensor against
  // config.json. Throws ModelError naming the file and tensor or key.
  static std::shared_ptr<const EncoderModel> load(const std::string& directory,
                                                  const LoadOptions& options = {});
  ~EncoderModel();

  // input_ids, attention_mask and token_type_ids are row-major (batch, seq);
  // attention_mask and token_type_ids may be null (all ones / all zeros).
  // Throws InvalidInputError for ids, types or lengths the model cannot take.
  EncoderOutput encode(const int64_t* input_ids, const int64_t* attention_mask,
                       const int64_t* token_type_ids, int64_t batch, int64_t seq) const;

  const EncoderInfo& info() const;
  // The threads it computes on: LoadOptions::num_threads, at most the CPUs available.
  int num_threads() const;
  // The arithmetic of the Linear layers, as loaded.
  ComputeType compute_type() const;
  const std::string& directory() const;
  // The adapter merged at load, or "" for none.
  const std::string& adapter_directory() const;

 private:
  struct Impl;
  explicit EncoderModel(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace nle
