#include "models/task_heads.h"

#include <cstring>
#include <vector>

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
  if (config.has("id2label")) {
    // As transformers reads it (int(key) -> name): a name for each row, keys 0 .. labels - 1.
    const nlohmann::json& id2label = config.json().at("id2label");
    auto bad = [&](const std::string& why) {
      throw ModelError(config.path() + ": 'id2label' " + why + " (it names the " + std::to_string(labels) +
                       " rows of tensor '" + name + "', from \"0\" to \"" + std::to_string(labels - 1) +
                       "\")");
    };
    if (!id2label.is_object()) bad("must be an object of label names, got " + id2label.dump());
    const auto n = static_cast<int64_t>(id2label.size());
    if (n != labels) bad("has " + std::to_string(n) + " labels");
    std::vector<bool> seen(static_cast<size_t>(labels), false);
    for (auto it = id2label.begin(); it != id2label.end(); ++it) {
      const std::string& key = it.key();
      size_t used = 0;
      long long index = -1;
      try {
        index = std::stoll(key, &used);
      } catch (const std::exception&) {
        used = 0;
      }
      if (used == 0 || used != key.size()) bad("has key '" + key + "', not a class index");
      if (index < 0 || index >= labels || seen[static_cast<size_t>(index)])
        bad("has key '" + key + "', outside the classes or given twice");
      seen[static_cast<size_t>(index)] = true;
      if (!it.value().is_string()) bad("maps '" + key + "' to " + it.value().dump() + ", not a name");
    }
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
