#include "nlpengine/encoder_model.h"

#include <sys/stat.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "core/adapter.h"
#include "core/buffer_pool.h"
#include "core/compute_threads.h"
#include "core/config.h"
#include "core/parallel.h"
#include "core/weight_store.h"
#include "layers/encoder_embeddings.h"
#include "layers/linear.h"
#include "layers/transformer_encoder_layer.h"
#include "models/encoder_config.h"
#include "models/packed_batch.h"
#include "models/task_heads.h"

namespace nle {

struct EncoderModel::Impl {
  std::string directory;
  std::string adapter_directory;
  EncoderConfig config;
  EncoderInfo info;
  int num_threads;
  ComputeType compute_type = ComputeType::Float32;
  WeightStore store;
  std::unique_ptr<EncoderEmbeddings> embeddings;
  std::vector<TransformerEncoderLayer> layers;
  bool has_pooler = false;
  Linear pooler;
  std::unique_ptr<TaskHead> head;

  PackedBatch pack(const int64_t* ids, const int64_t* mask, const int64_t* types, int64_t batch,
                   int64_t seq) const;
};

namespace {

bool is_directory(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

// Task checkpoints (BertForTokenClassification, ...) keep the encoder under
// the architecture's prefix; base models have none.
std::string detect_prefix(const WeightStore& store, const EncoderConfig& config) {
  const std::string probe = "embeddings.word_embeddings.weight";
  if (store.contains(probe)) return "";
  if (store.contains(config.base_model_prefix + probe)) return config.base_model_prefix;
  store.info(probe);  // throws "missing tensor" naming the file
  return "";
}

// The config the task head reads: the base's config.json with the head keys of
// the adapter directory's config.json (when it has one) replacing the base's.
Config head_config(const Config& base, const EncoderConfig& encoder, const std::string& adapter_dir) {
  const std::string path = adapter_dir + "/config.json";
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return base;
  const Config adapter = Config::from_file(path);
  const std::string type = adapter.get_string("model_type", encoder.model_type);
  if (type != encoder.model_type)
    throw ModelError(path + ": 'model_type' is '" + type + "' but the base model " + base.path() + " is '" +
                     encoder.model_type + "'");
  nlohmann::json merged = base.json();
  for (const char* key : {"architectures", "id2label", "label2id", "num_labels", "problem_type"}) {
    const auto it = adapter.json().find(key);
    if (it != adapter.json().end()) merged[key] = *it;
  }
  return Config(std::move(merged), path);
}

}  // namespace

std::shared_ptr<const EncoderModel> EncoderModel::load(const std::string& directory,
                                                       const LoadOptions& options) {
  if (!is_directory(directory))
    throw ModelError(directory + ": model directory does not exist or is not a directory");
  if (options.num_threads < 0)
    throw InvalidInputError("threads must be positive, got " + std::to_string(options.num_threads));
  auto impl = std::make_unique<Impl>();
  impl->directory = directory;
  const std::string config_path = directory + "/config.json";
  const Config raw_config = Config::from_file(config_path);
  impl->config = EncoderConfig::from_config(raw_config);
  impl->num_threads = model_num_threads(options.num_threads);
  // The load's own parallel work (merging adapters, quantizing and packing weights) runs on
  // the threads the model is given, as its calls do: a service loading with threads=1
  // started a second OpenMP thread here.
  return run_with_threads(impl->num_threads, [&]() -> std::shared_ptr<const EncoderModel> {
    impl->compute_type = options.compute_type;
    impl->store = WeightStore::open_directory(directory);

    const EncoderConfig& c = impl->config;
    const std::string prefix = detect_prefix(impl->store, c);
    Config task_config = raw_config;
    HeadKind head_kind = head_kind_from_config(raw_config);
    if (!options.adapter_directory.empty()) {
      const LoraAdapter adapter = LoraAdapter::open_directory(options.adapter_directory);
      adapter.apply(impl->store, c.base_model_prefix);
      impl->adapter_directory = options.adapter_directory;
      task_config = head_config(raw_config, c, options.adapter_directory);
      head_kind = head_kind_from_config(task_config);
      if (head_kind == HeadKind::None && adapter.task_type() == "TOKEN_CLS")
        head_kind = HeadKind::TokenClassification;
      if (head_kind == HeadKind::None && adapter.task_type() == "SEQ_CLS")
        head_kind = HeadKind::SequenceClassification;
      if (head_kind == HeadKind::None && adapter.task_type() == "QUESTION_ANS")
        head_kind = HeadKind::QuestionAnswering;
    }
    const Weights weights(impl->store, prefix, config_path, options.compute_type);
    impl->embeddings = std::make_unique<EncoderEmbeddings>(weights, c);
    const EncoderLayerNames names = EncoderLayerNames::for_layout(c.layout);
    const std::string stack = c.layout == EncoderLayout::DistilBert ? "transformer.layer." : "encoder.layer.";
    // Every layer has tensors of its own: a config asking for more layers than the file has
    // tensors fails on the first missing one, so reserving more would only risk bad_alloc.
    impl->layers.reserve(std::min(static_cast<size_t>(c.num_layers), impl->store.tensor_count()));
    for (int64_t i = 0; i < c.num_layers; ++i) {
      // A post-norm layer's input is the output of the norm before it.
      const NormParameters input_norm =
          i == 0 ? impl->embeddings->output_norm() : impl->layers.back().output_norm();
      impl->layers.emplace_back(weights, stack + std::to_string(i) + ".", names, c, input_norm);
    }
    if (c.layout == EncoderLayout::Bert && weights.contains("pooler.dense.weight")) {
      impl->has_pooler = true;
      impl->pooler = Linear(weights, "pooler.dense", c.hidden_size, c.hidden_size);
    }

    impl->head = make_task_head(head_kind, Weights(impl->store, "", config_path), prefix, c, task_config);

    impl->info = EncoderInfo{c.model_type,
                             c.vocab_size,
                             c.hidden_size,
                             c.num_layers,
                             c.num_heads,
                             c.intermediate_size,
                             c.max_sequence_length(),
                             c.type_vocab_size,
                             c.pad_token_id,
                             impl->has_pooler,
                             head_kind_name(head_kind),
                             impl->head ? impl->head->num_labels() : 0};
    // The buffers freed while loading (weights converted from F16 or BF16, then packed or
    // quantized) leave the pool, which would keep them resident for reuse.
    pool_trim();
    return std::shared_ptr<const EncoderModel>(new EncoderModel(std::move(impl)));
  });
}

EncoderModel::EncoderModel(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
EncoderModel::~EncoderModel() = default;

const EncoderInfo& EncoderModel::info() const { return impl_->info; }
int EncoderModel::num_threads() const { return impl_->num_threads; }
ComputeType EncoderModel::compute_type() const { return impl_->compute_type; }
const std::string& EncoderModel::directory() const { return impl_->directory; }
const std::string& EncoderModel::adapter_directory() const { return impl_->adapter_directory; }

PackedBatch EncoderModel::Impl::pack(const int64_t* ids, const int64_t* mask, const int64_t* types,
                                     int64_t batch, int64_t seq) const {
  PackedBatch p;
  p.batch = batch;
  p.seq = seq;
  p.seq_offsets.reserve(static_cast<size_t>(batch + 1));
  p.seq_offsets.push_back(0);
  const bool with_types = config.type_vocab_size > 0;
  const int64_t max_position = config.max_position_embeddings;
  for (int64_t b = 0; b < batch; ++b) {
    int64_t non_pad = 0;
    for (int64_t j = 0; j < seq; ++j) {
      const int64_t i = b * seq + j;
      if (config.positions == PositionScheme::PaddingOffset && ids[i] != config.pad_token_id) ++non_pad;
      if (mask && mask[i] == 0) continue;
      const int64_t position = config.positions == PositionScheme::PaddingOffset
                                   ? (ids[i] != config.pad_token_id ? config.pad_token_id + non_pad
                                                                    : config.pad_token_id)
                                   : j;
      if (position >= max_position)
        throw InvalidInputError("input_ids: sequence " + std::to_string(b) + " is longer than the " +
                                std::to_string(config.max_sequence_length()) +
                                " tokens the model's position embeddings allow (max_position_embeddings=" +
                                std::to_string(max_position) + ")");
      p.token_ids.push_back(ids[i]);
      p.position_ids.push_back(position);
      if (with_types) p.type_ids.push_back(types ? types[i] : 0);
      p.source_index.push_back(i);
    }
    p.seq_offsets.push_back(p.num_tokens());
  }
  if (!with_types && types) {
    for (int64_t i = 0; i < batch * seq; ++i)
      if (types[i] != 0)
        throw InvalidInputError("token_type_ids: model type '" + config.model_type +
                                "' takes no token types, but a value " + std::to_string(types[i]) +
                                " was given");
  }
  return p;
}

namespace {
// Below this many output floats one thread writes them (a sentence or two).
constexpr int64_t kParallelOutputFloats = 1 << 16;
}  // namespace

EncoderOutput EncoderModel::encode(const int64_t* input_ids, const int64_t* attention_mask,
                                   const int64_t* token_type_ids, int64_t batch, int64_t seq) const {
  const EncoderConfig& c = impl_->config;
  if (batch < 0 || seq < 0)
    throw InvalidInputError("input_ids: negative shape (" + std::to_string(batch) + ", " +
                            std::to_string(seq) + ")");
  return run_with_threads(impl_->num_threads, [&]() -> EncoderOutput {
    const PackedBatch packed = impl_->pack(input_ids, attention_mask, token_type_ids, batch, seq);
    const int64_t tokens = packed.num_tokens();

    Tensor hidden(DType::F32, {tokens, c.hidden_size});
    (*impl_->embeddings)(hidden, packed);
    const bool any_layer = !impl_->layers.empty();
    TransformerEncoderLayer::Workspace workspace(
        tokens, c, any_layer ? impl_->layers.front().intermediate_dtype() : DType::F32,
        any_layer && impl_->layers.front().rounds_norms(),
        std::any_of(impl_->layers.begin(), impl_->layers.end(),
                    [](const auto& l) { return l.keeps_intermediate(); }));
    for (const auto& layer : impl_->layers) layer(hidden, packed.seq_offsets, workspace);

    EncoderOutput out;
    out.last_hidden_state = Tensor(DType::F32, {batch, seq, c.hidden_size});
    float* dst = out.last_hidden_state.data<float>();
    const float* src = hidden.data<float>();
    const size_t row_bytes = static_cast<size_t>(c.hidden_size) * sizeof(float);
    // Each output position's packed row (-1: padding, zeros), written by both threads: one
    // thread alone left the other idle for a pass over the whole (batch, seq, hidden) output.
    std::vector<int64_t> packed_row(static_cast<size_t>(batch * seq), -1);
    for (int64_t t = 0; t < tokens; ++t) packed_row[static_cast<size_t>(packed.source_index[t])] = t;
#pragma omp parallel for schedule(static) if (batch * seq * c.hidden_size >= kParallelOutputFloats)
    for (int64_t i = 0; i < batch * seq; ++i) {
      const int64_t t = packed_row[static_cast<size_t>(i)];
      if (t < 0)
        std::memset(dst + i * c.hidden_size, 0, row_bytes);
      else
        std::memcpy(dst + i * c.hidden_size, src + t * c.hidden_size, row_bytes);
    }

    if (impl_->has_pooler) {
      // The pooler reads each row's first position (its first real token when
      // position 0 is masked, e.g. with left padding).
      Tensor first(DType::F32, {batch, c.hidden_size});
      for (int64_t b = 0; b < batch; ++b) {
        float* row = first.data<float>() + b * c.hidden_size;
        const int64_t begin = packed.seq_offsets[b], end = packed.seq_offsets[b + 1];
        if (begin == end)
          std::memset(row, 0, row_bytes);
        else
          std::memcpy(row, src + begin * c.hidden_size, row_bytes);
      }
      out.pooler_output = Tensor(DType::F32, {batch, c.hidden_size});
      impl_->pooler(out.pooler_output, first, ops::Activation::Tanh);
    }
    if (impl_->head) out.logits = (*impl_->head)(hidden, packed);
    return out;
  });
}

}  // namespace nle
