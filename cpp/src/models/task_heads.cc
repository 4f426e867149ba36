#include "models/task_heads.h"

#include <cstring>

namespace nle {

namespace {

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// The number of labels: the classifier's output size, which must agree with
// id2label when the config has one.
int64_t classifier_labels(const Weights& weights, const std::string& scope, const Config& config) {
  const std::string name = weights.prefix() + scope + ".weight";
  const TensorInfo& info = weights.info(scope + ".weight");  // throws when missing
  if (info.shape.size() != 2 || info.shape[0] < 1)
    throw ModelError(weights.store().file_for(name) + ": tensor '" + name + "' has shape " +
                     shape_to_string(info.shape) + ", expected (num_labels, hidden_size)");
  const int64_t labels = info.shape[0];
  if (config.has("id2label") && config.json().at("id2label").is_object()) {
    const auto n = static_cast<int64_t>(config.json().at("id2label").size());
    if (n != labels)
      throw ModelError(config.path() + ": 'id2label' has " + std::to_string(n) + " labels but tensor '" +
                       name + "' has " + std::to_string(labels) + " rows");
  }
  return labels;
}

// The span QA head's output size, which transformers' models split into start and
// end logits: it must be 2 (config.json's labels do not matter for this head).
int64_t span_outputs(const Weights& weights, const std::string& scope) {
  const std::string name = weights.prefix() + scope + ".weight";
  const TensorInfo& info = weights.info(scope + ".weight");  // throws when missing
  if (info.shape.size() != 2 || info.shape[0] != 2)
    throw ModelError(weights.store().file_for(name) + ": tensor '" + name + "' has shape " +
                     shape_to_string(info.shape) + ", expected (2, hidden_size): start and end logits");
  return 2;
}

// Gathers each sequence's first packed token (its first real token).
Tensor first_tokens(const Tensor& hidden, const PackedBatch& batch) {
  const int64_t h = hidden.dim(1);
  Tensor out = Tensor::zeros(DType::F32, {batch.batch, h});
  for (int64_t b = 0; b < batch.batch; ++b)
    if (batch.seq_offsets[b + 1] > batch.seq_offsets[b])
      std::memcpy(out.data<float>() + b * h, hidden.data<float>() + batch.seq_offsets[b] * h,
                  static_cast<size_t>(h) * sizeof(float));
  return out;
}

// dense + activation on the first token, then the output projection:
// BERT (pooler + classifier), RoBERTa (classifier.dense/out_proj, tanh),
// DistilBERT (pre_classifier + ReLU), ELECTRA (classifier.dense/out_proj, GELU).
class SequenceClassificationHead : public TaskHead {
 public:
  SequenceClassificationHead(const Weights& dense_weights, const std::string& dense_scope,
                             ops::Activation activation, const Weights& weights,
                             const std::string& out_scope, int64_t hidden, int64_t labels)
      : dense_(dense_weights, dense_scope, hidden, hidden),
        activation_(activation),
        out_(weights, out_scope, labels, hidden),
        labels_(labels) {}

  Tensor operator()(const Tensor& hidden, const PackedBatch& batch) const override {
    const Tensor first = first_tokens(hidden, batch);
    Tensor features(DType::F32, first.shape());
    dense_(features, first, activation_);
    Tensor logits(DType::F32, {batch.batch, labels_});
    out_(logits, features);
    return logits;
  }
  int64_t num_labels() const override { return labels_; }

 private:
  Linear dense_;
  ops::Activation activation_;
  Linear out_;
  int64_t labels_;
};

// A linear layer on every token: the token classifier ("classifier") and the span
// QA head ("qa_outputs", start and end logits in its two columns).
class TokenClassificationHead : public TaskHead {
 public:
  TokenClassificationHead(const Weights& weights, const std::string& scope, int64_t hidden, int64_t labels)
      : classifier_(weights, scope, labels, hidden), labels_(labels) {}

  Tensor operator()(const Tensor& hidden, const PackedBatch& batch) const override {
    const int64_t tokens = batch.num_tokens();
    Tensor packed(DType::F32, {tokens, labels_});
    classifier_(packed, hidden);
    Tensor logits = Tensor::zeros(DType::F32, {batch.batch, batch.seq, labels_});
    for (int64_t t = 0; t < tokens; ++t)
      std::memcpy(logits.data<float>() + batch.source_index[t] * labels_, packed.data<float>() + t * labels_,
                  static_cast<size_t>(labels_) * sizeof(float));
    return logits;
  }
  int64_t num_labels() const override { return labels_; }

 private:
  Linear classifier_;
  int64_t labels_;
};

}  // namespace

const char* head_kind_name(HeadKind kind) {
  switch (kind) {
    case HeadKind::SequenceClassification:
      return "sequence_classification";
    case HeadKind::TokenClassification:
      return "token_classification";
    case HeadKind::QuestionAnswering:
      return "question_answering";
    case HeadKind::None:
      break;
  }
  return "none";
}

HeadKind head_kind_from_config(const Config& config) {
  const auto it = config.json().find("architectures");
  if (it == config.json().end() || !it->is_array()) return HeadKind::None;
  for (const auto& arch : *it) {
    if (!arch.is_string()) continue;
    const std::string name = arch.get<std::string>();
    if (ends_with(name, "ForSequenceClassification")) return HeadKind::SequenceClassification;
    if (ends_with(name, "ForTokenClassification")) return HeadKind::TokenClassification;
    if (ends_with(name, "ForQuestionAnswering")) return HeadKind::QuestionAnswering;
  }
  return HeadKind::None;
}

std::unique_ptr<TaskHead> make_task_head(HeadKind kind, const Weights& weights,
                                         const std::string& encoder_prefix, const EncoderConfig& config,
                                         const Config& raw_config) {
  const int64_t h = config.hidden_size;
  if (kind == HeadKind::TokenClassification)
    return std::make_unique<TokenClassificationHead>(weights, "classifier", h,
                                                     classifier_labels(weights, "classifier", raw_config));
  if (kind == HeadKind::QuestionAnswering)
    return std::make_unique<TokenClassificationHead>(weights, "qa_outputs", h, span_outputs(weights, "qa_outputs"));
  if (kind != HeadKind::SequenceClassification) return nullptr;

  const std::string& type = config.model_type;
  if (type == "bert") {
    const Weights encoder_weights(weights.store(), encoder_prefix, raw_config.path());
    return std::make_unique<SequenceClassificationHead>(
        encoder_weights, "pooler.dense", ops::Activation::Tanh, weights, "classifier", h,
        classifier_labels(weights, "classifier", raw_config));
  }
  if (type == "distilbert")
    return std::make_unique<SequenceClassificationHead>(
        weights, "pre_classifier", ops::Activation::Relu, weights, "classifier", h,
        classifier_labels(weights, "classifier", raw_config));
  const ops::Activation act = type == "electra" ? ops::Activation::GeluErf : ops::Activation::Tanh;
  return std::make_unique<SequenceClassificationHead>(
      weights, "classifier.dense", act, weights, "classifier.out_proj", h,
      classifier_labels(weights, "classifier.out_proj", raw_config));
}

}  // namespace nle
