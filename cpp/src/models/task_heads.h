// Task heads on top of the encoder, loaded by their Hugging Face weight names so
// that checkpoints saved from AutoModelFor{Sequence,Token}Classification and
// AutoModelForQuestionAnswering run as they are.
#pragma once

#include <memory>
#include <string>

#include "core/config.h"
#include "layers/linear.h"
#include "models/encoder_config.h"
#include "models/packed_batch.h"

namespace nle {

enum class HeadKind { None, SequenceClassification, TokenClassification, QuestionAnswering };

const char* head_kind_name(HeadKind kind);
// From config.json's "architectures" (e.g. "RobertaForTokenClassification").
HeadKind head_kind_from_config(const Config& config);

class TaskHead {
 public:
  virtual ~TaskHead() = default;
  // hidden: the packed (T, hidden) encoder output of `batch`.
  // Returns (batch, seq, labels) for token heads, (batch, seq, 2) start/end logits
  // for the span QA head, (batch, labels) for sequence heads.
  virtual Tensor operator()(const Tensor& hidden, const PackedBatch& batch) const = 0;
  virtual int64_t num_labels() const = 0;
};

// Builds the head the config names, or null for a bare encoder. `weights` has no
// prefix (heads live at the top level: "classifier.weight", "qa_outputs.weight",
// ...); `encoder_prefix`
// is where the encoder's own weights (BERT's pooler) live.
std::unique_ptr<TaskHead> make_task_head(HeadKind kind, const Weights& weights,
                                         const std::string& encoder_prefix, const EncoderConfig& config,
                                         const Config& raw_config);

}  // namespace nle
