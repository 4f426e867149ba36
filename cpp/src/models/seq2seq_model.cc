#include "nlpengine/seq2seq_model.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <nlohmann/json.hpp>
#include <vector>

#include "core/buffer_pool.h"
#include "core/compute_threads.h"
#include "core/config.h"
#include "core/parallel.h"
#include "core/weight_store.h"
#include "generate/decoder_session.h"
#include "generate/generation_config.h"
#include "generate/kv_cache.h"
#include "generate/searches.h"
#include "layers/linear.h"
#include "layers/norm.h"
#include "layers/relative_position_bias.h"
#include "layers/seq2seq_embeddings.h"
#include "layers/seq2seq_layers.h"
#include "models/seq2seq_config.h"

namespace nle {

struct Seq2SeqModel::Impl {
  std::string directory;
  Seq2SeqConfig config;
  Seq2SeqInfo info;
  int num_threads = 1;
  ComputeType compute_type = ComputeType::Float32;
  WeightStore store;
  std::unique_ptr<Seq2SeqEmbeddings> encoder_embeddings, decoder_embeddings;
  std::vector<Seq2SeqEncoderLayer> encoder_layers;
  std::vector<Seq2SeqDecoderLayer> decoder_layers;
  bool has_final_norms = false;
  Norm encoder_final_norm, decoder_final_norm;
  RelativePositionBias encoder_bias, decoder_bias;
  Linear lm_head;
  GenerationOptions defaults;

  // Encoder states of a batch, packed (real tokens only), and the row range of each source.
  struct Memory {
    Tensor states;
    std::vector<int64_t> offsets;
  };
  Memory encode(const int64_t* ids, const int64_t* mask, int64_t batch, int64_t seq) const;
};

namespace {

// This machine's memory in bytes (0 when the system does not say).
double physical_memory_bytes() {
  const long pages = ::sysconf(_SC_PHYS_PAGES), page = ::sysconf(_SC_PAGE_SIZE);
  return pages > 0 && page > 0 ? static_cast<double>(pages) * static_cast<double>(page) : 0.0;
}

std::string gigabytes(double bytes) {
  char text[32];
  std::snprintf(text, sizeof text, "%.3g GB", bytes / 1e9);
  return text;
}

bool is_directory(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

// One generation (or teacher-forced) call: the KV cache, the cross-attention
// keys/values of every decoder layer, computed once per source, and the steps.
class Session final : public DecoderSession {
 public:
  Session(const Seq2SeqModel::Impl& model, const Seq2SeqModel::Impl::Memory& memory, int64_t num_sources,
          int64_t rows_per_source, int64_t max_steps)
      : m_(model),
        memory_(memory),
        rows_per_source_(rows_per_source),
        // The self-attention keys and values as the cross-attention memory keeps them:
        // float32 for float32, int8 codes with a scale per row and head for int8, IEEE half
        // for the other fast compute types.
        cache_(static_cast<int64_t>(model.decoder_layers.size()), num_sources * rows_per_source, max_steps,
               model.config.inner_dim(true),
               model.compute_type == ComputeType::Float32 ? DType::F32
               : model.compute_type == ComputeType::Int8  ? DType::I8
                                                          : DType::F16,
               model.config.decoder_heads) {
    memory_kv_.reserve(m_.decoder_layers.size());
    for (const auto& layer : m_.decoder_layers) memory_kv_.push_back(layer.project_memory(memory_.states));
  }

  int64_t vocab_size() const override { return m_.config.decoder_vocab_size; }

  Tensor step(const std::vector<int64_t>& rows, const std::vector<int64_t>& tokens, int64_t step) override {
    const Seq2SeqConfig& c = m_.config;
    const int64_t n = static_cast<int64_t>(rows.size());
    Tensor x(DType::F32, {n, c.d_model});
    std::vector<int64_t> positions(static_cast<size_t>(n), step);
    (*m_.decoder_embeddings)(x, tokens.data(), positions.data(), n, "decoder_input_ids");

    cache_.key_rows(rows, step, self_offsets_, self_rows_);
    memory_offsets_.assign(1, 0);
    memory_rows_.clear();
    for (int64_t r : rows) {
      const int64_t s = r / rows_per_source_;
      for (int64_t i = memory_.offsets[s]; i < memory_.offsets[s + 1]; ++i) memory_rows_.push_back(i);
      memory_offsets_.push_back(static_cast<int64_t>(memory_rows_.size()));
    }
    const float* bias = nullptr;
    if (c.positions == Seq2SeqPositions::Relative) {
      bias_.resize(static_cast<size_t>(c.decoder_heads * (step + 1)));
      m_.decoder_bias.for_query(bias_.data(), step);
      bias = bias_.data();
    }
    for (size_t l = 0; l < m_.decoder_layers.size(); ++l) {
      const Seq2SeqDecoderLayer::Step s{&cache_,         static_cast<int64_t>(l), &rows,           step,
                                        &self_offsets_,  &self_rows_,             bias,            &memory_kv_[l],
                                        &memory_offsets_, &memory_rows_};
      m_.decoder_layers[l](x, s);
    }
    if (m_.has_final_norms) m_.decoder_final_norm(x, x);
    if (c.lm_head_scale != 1.f) {
      float* p = x.data<float>();
      for (int64_t i = 0; i < x.numel(); ++i) p[i] *= c.lm_head_scale;
    }
    Tensor logits(DType::F32, {n, c.decoder_vocab_size});
    m_.lm_head(logits, x);
    return logits;
  }

  void reorder(const std::vector<int64_t>& rows, const std::vector<int64_t>& parents, int64_t steps) override {
    cache_.reorder(rows, parents, steps);
  }

 private:
  const Seq2SeqModel::Impl& m_;
  const Seq2SeqModel::Impl::Memory& memory_;
  int64_t rows_per_source_;
  KvCache cache_;
  std::vector<ProjectedMemory> memory_kv_;
  std::vector<int64_t> self_offsets_, self_rows_, memory_offsets_, memory_rows_;
  std::vector<float> bias_;
};

}  // namespace

bool Seq2SeqModel::is_seq2seq_directory(const std::string& directory) {
  struct stat st;
  const std::string path = directory + "/config.json";
  if (::stat(path.c_str(), &st) != 0) return false;
  return Seq2SeqConfig::is_seq2seq(Config::from_file(path));
}

std::shared_ptr<const Seq2SeqModel> Seq2SeqModel::load(const std::string& directory, const LoadOptions& options) {
  if (!is_directory(directory))
    throw ModelError(directory + ": model directory does not exist or is not a directory");
  if (options.num_threads < 0)
    throw InvalidInputError("threads must be positive, got " + std::to_string(options.num_threads));
  if (!options.adapter_directory.empty())
    throw ModelError(options.adapter_directory + ": adapters are not supported for encoder-decoder models yet");
  auto impl = std::make_unique<Impl>();
  impl->directory = directory;
  const std::string config_path = directory + "/config.json";
  const Config raw = Config::from_file(config_path);
  impl->config = Seq2SeqConfig::from_config(raw);
  impl->num_threads = model_num_threads(options.num_threads);
  // The load's own parallel work (merging adapters, quantizing and packing weights) runs on
  // the threads the model is given, as its calls do: a service loading with threads=1
  // started a second OpenMP thread here.
  return run_with_threads(impl->num_threads, [&]() -> std::shared_ptr<const Seq2SeqModel> {
    impl->compute_type = options.compute_type;
    impl->store = WeightStore::open_directory(directory);
    const Seq2SeqConfig& c = impl->config;
    const bool t5 = c.model_type == "t5";

    // BartForConditionalGeneration / MarianMTModel keep the model under "model."; BartModel has no prefix.
    std::string prefix;
    if (!t5 && (impl->store.contains("model.shared.weight") ||
                impl->store.contains("model.encoder.embed_tokens.weight")))
      prefix = "model.";
    const Weights w(impl->store, prefix, config_path, options.compute_type);
    const Weights root(impl->store, "", config_path);

    // The token tables as the checkpoint stores them (Weights::require_table).
    const Tensor encoder_tokens =
        w.require_any_table({"encoder.embed_tokens.weight", "shared.weight"}, {c.vocab_size, c.d_model});
    const Tensor decoder_tokens =
        c.shared_decoder_embeddings
            ? w.require_any_table({"decoder.embed_tokens.weight", "shared.weight"}, {c.vocab_size, c.d_model})
            : w.require_table("decoder.embed_tokens.weight", {c.decoder_vocab_size, c.d_model});
    impl->encoder_embeddings = std::make_unique<Seq2SeqEmbeddings>(encoder_tokens, w, "encoder.", c);
    impl->decoder_embeddings = std::make_unique<Seq2SeqEmbeddings>(decoder_tokens, w, "decoder.", c);

    const std::string enc_stack = t5 ? "encoder.block." : "encoder.layers.";
    const std::string dec_stack = t5 ? "decoder.block." : "decoder.layers.";
    // Each layer learns which norm's output its input is, for int8 smoothing (Linear).
    // Every layer has tensors of its own: a config asking for more layers than the file has
    // tensors fails on the first missing one, so reserving more would only risk bad_alloc.
    impl->encoder_layers.reserve(std::min(static_cast<size_t>(c.encoder_layers), impl->store.tensor_count()));
    for (int64_t i = 0; i < c.encoder_layers; ++i) {
      const NormParameters input_norm =
          i == 0 ? impl->encoder_embeddings->output_norm() : impl->encoder_layers.back().output_norm();
      impl->encoder_layers.emplace_back(w, enc_stack + std::to_string(i) + ".", c, input_norm);
    }
    if (t5) {
      impl->has_final_norms = true;
      impl->encoder_final_norm = Norm(w, "encoder.final_layer_norm", c.d_model, c.norm_eps, true);
      impl->decoder_final_norm = Norm(w, "decoder.final_layer_norm", c.d_model, c.norm_eps, true);
    }
    const NormParameters memory_norm = impl->has_final_norms ? impl->encoder_final_norm.parameters()
                                       : impl->encoder_layers.empty()
                                           ? impl->encoder_embeddings->output_norm()
                                           : impl->encoder_layers.back().output_norm();
    impl->decoder_layers.reserve(std::min(static_cast<size_t>(c.decoder_layers), impl->store.tensor_count()));
    for (int64_t i = 0; i < c.decoder_layers; ++i) {
      const NormParameters input_norm =
          i == 0 ? impl->decoder_embeddings->output_norm() : impl->decoder_layers.back().output_norm();
      impl->decoder_layers.emplace_back(w, dec_stack + std::to_string(i) + ".", c, input_norm, memory_norm);
    }
    if (t5) {
      impl->encoder_bias =
          RelativePositionBias(w, "encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight",
                               c.relative_buckets, c.relative_max_distance, c.encoder_heads, true);
      impl->decoder_bias =
          RelativePositionBias(w, "decoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight",
                               c.relative_buckets, c.relative_max_distance, c.decoder_heads, false);
    }

    // The LM head: its own weight when the file has one, else tied to the decoder's embeddings.
    Tensor head = root.contains("lm_head.weight")
                      ? root.require_table("lm_head.weight", {c.decoder_vocab_size, c.d_model})
                      : decoder_tokens;
    Tensor head_bias;
    if (root.contains("final_logits_bias")) {
      head_bias =
          root.require("final_logits_bias", {1, c.decoder_vocab_size}).reshape({c.decoder_vocab_size});
    }
    // The head takes the decoder's last norm's output (times lm_head_scale, which smoothing
    // passes through).
    const NormParameters head_norm = impl->has_final_norms ? impl->decoder_final_norm.parameters()
                                     : impl->decoder_layers.empty()
                                         ? impl->decoder_embeddings->output_norm()
                                         : impl->decoder_layers.back().output_norm();
    impl->lm_head = Linear(head, head_bias, options.compute_type, head_norm);

    impl->defaults = read_generation_defaults(directory, raw, c.decoder_start_token_id, c.decoder_vocab_size);
    // generate() pads finished rows with the first end token, else with config.json's pad_token_id.
    if (impl->defaults.pad_token_id < 0 && impl->defaults.eos_token_id.empty() &&
        (c.pad_token_id < 0 || c.pad_token_id >= c.decoder_vocab_size))
      throw ModelError(raw.path() + ": pad_token_id " + std::to_string(c.pad_token_id) +
                       " is outside the vocabulary [0, " + std::to_string(c.decoder_vocab_size) +
                       "), and no eos_token_id stands in for it");
    impl->info = Seq2SeqInfo{c.model_type,         c.vocab_size,
                             c.decoder_vocab_size, c.d_model,
                             c.encoder_layers,     c.decoder_layers,
                             c.encoder_heads,      impl->encoder_embeddings->max_positions(),
                             c.pad_token_id,       impl->defaults.decoder_start_token_id};
    // The buffers freed while loading (weights converted from F16 or BF16, then packed or
    // quantized) leave the pool, which would keep them resident for reuse.
    pool_trim();
    return std::shared_ptr<const Seq2SeqModel>(new Seq2SeqModel(std::move(impl)));
  });
}

Seq2SeqModel::Seq2SeqModel(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Seq2SeqModel::~Seq2SeqModel() = default;

const Seq2SeqInfo& Seq2SeqModel::info() const { return impl_->info; }
int Seq2SeqModel::num_threads() const { return impl_->num_threads; }
ComputeType Seq2SeqModel::compute_type() const { return impl_->compute_type; }
const std::string& Seq2SeqModel::directory() const { return impl_->directory; }
const GenerationOptions& Seq2SeqModel::generation_defaults() const { return impl_->defaults; }

GenerationOptions Seq2SeqModel::generation_options(const std::string& overrides_json) const {
  GenerationOptions o = impl_->defaults;
  if (overrides_json.empty()) return o;
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(overrides_json);
  } catch (const nlohmann::json::exception& e) {
    throw InvalidInputError(std::string("generation options: not valid JSON: ") + e.what());
  }
  apply_generation_json(o, j, "generation options", true);
  return o;
}

Seq2SeqModel::Impl::Memory Seq2SeqModel::Impl::encode(const int64_t* ids, const int64_t* mask, int64_t batch,
                                                      int64_t seq) const {
  if (batch < 0 || seq < 0)
    throw InvalidInputError("input_ids: negative shape (" + std::to_string(batch) + ", " + std::to_string(seq) + ")");
  Memory m;
  std::vector<int64_t> tokens, positions;
  m.offsets.push_back(0);
  int64_t longest = 0;
  for (int64_t b = 0; b < batch; ++b) {
    for (int64_t j = 0; j < seq; ++j) {
      if (mask && mask[b * seq + j] == 0) continue;
      tokens.push_back(ids[b * seq + j]);
      positions.push_back(j);
    }
    m.offsets.push_back(static_cast<int64_t>(tokens.size()));
    longest = std::max(longest, m.offsets[b + 1] - m.offsets[b]);
  }
  const int64_t n = static_cast<int64_t>(tokens.size());
  m.states = Tensor(DType::F32, {n, config.d_model});
  (*encoder_embeddings)(m.states, tokens.data(), positions.data(), n, "input_ids");
  Tensor table;
  ops::RelativeBias bias;
  const ops::RelativeBias* bias_ptr = nullptr;
  if (config.positions == Seq2SeqPositions::Relative) {
    // Distances are measured in the padded row, as transformers does.
    table = encoder_bias.table(std::max<int64_t>(seq, 1));
    bias = ops::RelativeBias{table.data<float>(), table.dim(1), std::max<int64_t>(seq, 1) - 1};
    bias_ptr = &bias;
  }
  for (const auto& layer : encoder_layers) layer(m.states, m.offsets, bias_ptr);
  if (has_final_norms) encoder_final_norm(m.states, m.states);
  return m;
}

Tensor Seq2SeqModel::forward(const int64_t* input_ids, const int64_t* attention_mask, int64_t batch, int64_t seq,
                             const int64_t* decoder_input_ids, int64_t decoder_seq) const {
  return run_with_threads(impl_->num_threads, [&]() -> Tensor {
    const Seq2SeqConfig& c = impl_->config;
    if (decoder_seq < 0) throw InvalidInputError("decoder_input_ids: negative length");
    const Impl::Memory memory = impl_->encode(input_ids, attention_mask, batch, seq);
    Session session(*impl_, memory, batch, 1, std::max<int64_t>(decoder_seq, 1));
    Tensor out(DType::F32, {batch, decoder_seq, c.decoder_vocab_size});
    std::vector<int64_t> rows(static_cast<size_t>(batch)), tokens(static_cast<size_t>(batch));
    for (int64_t b = 0; b < batch; ++b) rows[b] = b;
    for (int64_t t = 0; t < decoder_seq; ++t) {
      for (int64_t b = 0; b < batch; ++b) tokens[b] = decoder_input_ids[b * decoder_seq + t];
      const Tensor logits = session.step(rows, tokens, t);
      for (int64_t b = 0; b < batch; ++b)
        std::memcpy(out.data<float>() + (b * decoder_seq + t) * c.decoder_vocab_size,
                    logits.data<float>() + b * c.decoder_vocab_size,
                    static_cast<size_t>(c.decoder_vocab_size) * 4);
    }
    return out;
  });
}

GenerationResult Seq2SeqModel::generate(const int64_t* input_ids, const int64_t* attention_mask, int64_t batch,
                                        int64_t seq, const GenerationOptions& requested) const {
  GenerationOptions o = requested;
  if (o.pad_token_id < 0) o.pad_token_id = o.eos_token_id.empty() ? impl_->config.pad_token_id : o.eos_token_id[0];
  if (o.decoder_start_token_id < 0) o.decoder_start_token_id = impl_->config.decoder_start_token_id;
  validate_generation_options(o, impl_->config.decoder_vocab_size);
  const int64_t max_length = o.effective_max_length();
  const int64_t positions = impl_->decoder_embeddings->max_positions();
  if (positions > 0 && max_length - 1 > positions)
    throw InvalidInputError("generation options: max_length " + std::to_string(max_length) +
                            " needs more decoder positions than the model's " + std::to_string(positions));
  // The key/value cache holds every step up to max_length for each row (in doubles: the
  // product can overflow int64). More than the machine's memory is the caller's option to
  // fix, not an allocation failure (T5 has no position limit to bound it).
  const int64_t rows_per_source = o.num_beams > 1 ? o.num_beams : o.num_return_sequences;
  const double row_steps = static_cast<double>(batch) * static_cast<double>(rows_per_source) *
                           static_cast<double>(std::max<int64_t>(max_length, 1));
  const double element = impl_->compute_type == ComputeType::Float32 ? 4.0
                         : impl_->compute_type == ComputeType::Int8  ? 1.0
                                                                     : 2.0;
  const double cache_bytes =
      row_steps *
      (2.0 * static_cast<double>(impl_->decoder_layers.size()) *
           (static_cast<double>(impl_->config.inner_dim(true)) * element +
            (impl_->compute_type == ComputeType::Int8 ? 4.0 * impl_->config.decoder_heads : 0.0)) +
       8.0);  // + the step history
  const double memory_bytes = physical_memory_bytes();
  if (row_steps >= 9.2e18 || (memory_bytes > 0 && cache_bytes > memory_bytes))
    throw InvalidInputError("generation options: max_length " + std::to_string(max_length) +
                            " (max_new_tokens or max_length) needs a key/value cache of " +
                            gigabytes(cache_bytes) + " for " + std::to_string(batch * rows_per_source) +
                            " rows, more than this machine's memory (" + gigabytes(memory_bytes) + ")");

  return run_with_threads(impl_->num_threads, [&]() -> GenerationResult {
    const Impl::Memory memory = impl_->encode(input_ids, attention_mask, batch, seq);
    SearchOutput result;
    if (o.num_beams > 1) {
      Session session(*impl_, memory, batch, o.num_beams, std::max<int64_t>(max_length, 1));
      result = beam_search(session, batch, o);
    } else {
      const int64_t per_source = o.num_return_sequences;
      Session session(*impl_, memory, batch, per_source, std::max<int64_t>(max_length, 1));
      result = sampling_search(session, batch * per_source, o);
    }

    int64_t length = 0;
    for (const auto& s : result.sequences) length = std::max<int64_t>(length, static_cast<int64_t>(s.size()));
    const int64_t rows = static_cast<int64_t>(result.sequences.size());
    GenerationResult out;
    out.sequences = Tensor(DType::I64, {rows, length});
    out.scores = Tensor(DType::F32, {rows});
    int64_t* dst = out.sequences.data<int64_t>();
    for (int64_t r = 0; r < rows; ++r) {
      const auto& s = result.sequences[r];
      std::fill(dst + r * length, dst + (r + 1) * length, result.fill_token);
      std::copy(s.begin(), s.end(), dst + r * length);
      out.scores.data<float>()[r] = result.scores[r];
    }
    return out;
  });
}

}  // namespace nle
