#include "layers/transformer_encoder_layer.h"

#include <exception>
#include <mutex>

namespace nle {

EncoderLayerNames EncoderLayerNames::for_layout(EncoderLayout layout) {
  if (layout == EncoderLayout::DistilBert)
    return {{"attention.q_lin", "attention.k_lin", "attention.v_lin"},
            "attention.out_lin",
            "sa_layer_norm",
            "ffn.lin1",
            "ffn.lin2",
            "output_layer_norm"};
  return {{"attention.self.query", "attention.self.key", "attention.self.value"},
          "attention.output.dense",
          "attention.output.LayerNorm",
          "intermediate.dense",
          "output.dense",
          "output.LayerNorm"};
}

namespace {
std::vector<std::string> scoped(const std::string& scope, const std::vector<std::string>& names) {
  std::vector<std::string> out;
  for (const auto& n : names) out.push_back(scope + n);
  return out;
}
}  // namespace

TransformerEncoderLayer::TransformerEncoderLayer(const Weights& weights, const std::string& scope,
                                                 const EncoderLayerNames& names,
                                                 const EncoderConfig& config)
    : attention_(weights, scoped(scope, names.qkv), scope + names.attention_output,
                 config.hidden_size, config.num_heads),
      attention_norm_(weights, scope + names.attention_norm, config.hidden_size, config.layer_norm_eps),
      intermediate_(weights, scope + names.intermediate, config.intermediate_size, config.hidden_size),
      output_(weights, scope + names.output, config.hidden_size, config.intermediate_size),
      output_norm_(weights, scope + names.output_norm, config.hidden_size, config.layer_norm_eps),
      activation_(config.activation) {}

TransformerEncoderLayer::Workspace::Workspace(int64_t tokens, const EncoderConfig& config)
    : qkv(DType::F32, {tokens, 3 * config.hidden_size}),
      context(DType::F32, {tokens, config.hidden_size}),
      projected(DType::F32, {tokens, config.hidden_size}),
      intermediate(DType::F32, {tokens, config.intermediate_size}) {}

namespace {
// Rows [begin, end) of a 2-D F32 tensor, sharing its storage.
Tensor row_view(Tensor& t, int64_t begin, int64_t end) {
  const int64_t cols = t.dim(1);
  return Tensor::view(DType::F32, {end - begin, cols}, t.data<float>() + begin * cols, t.owner());
}
}  // namespace

std::vector<size_t> TransformerEncoderLayer::sequence_groups(const std::vector<int64_t>& seq_offsets,
                                                             int64_t min_rows) {
  std::vector<size_t> bounds{0};
  const size_t sequences = seq_offsets.empty() ? 0 : seq_offsets.size() - 1;
  for (size_t s = 1; s <= sequences; ++s)
    if (seq_offsets[s] - seq_offsets[bounds.back()] >= min_rows || s == sequences) bounds.push_back(s);
  return bounds;
}

void TransformerEncoderLayer::operator()(Tensor& x, const std::vector<int64_t>& seq_offsets,
                                         Workspace& ws) const {
  if (intermediate_.compute_type() == ComputeType::Int8) {
    const std::vector<size_t> groups = sequence_groups(seq_offsets, kGroupRows);
    if (groups.size() > 2) {
      run_in_groups(x, seq_offsets, groups, ws);
      return;
    }
  }
  run_rows(x, seq_offsets, ws.qkv, ws.context, ws.projected, ws.intermediate);
}

void TransformerEncoderLayer::run_rows(Tensor& x, const std::vector<int64_t>& seq_offsets, Tensor& qkv,
                                       Tensor& context, Tensor& projected, Tensor& intermediate) const {
  attention_(projected, x, seq_offsets, qkv, context);
  attention_norm_(x, projected, &x);
  intermediate_(intermediate, x, activation_);
  output_(projected, intermediate);
  output_norm_(x, projected, &x);
}

void TransformerEncoderLayer::run_in_groups(Tensor& x, const std::vector<int64_t>& seq_offsets,
                                            const std::vector<size_t>& groups, Workspace& ws) const {
  const int64_t count = static_cast<int64_t>(groups.size()) - 1;
  // An exception must not leave a parallel region: the first is kept and rethrown.
  std::exception_ptr failure;
  std::mutex failure_mutex;
  // Each thread takes whole groups; the operations inside run on the calling thread
  // (nested parallel regions, and MKL called inside a parallel region, are serial).
#pragma omp parallel for schedule(dynamic, 1)
  for (int64_t g = 0; g < count; ++g) {
    try {
      run_group(x, seq_offsets, groups[g], groups[g + 1], ws);
    } catch (...) {
      std::lock_guard<std::mutex> lock(failure_mutex);
      if (!failure) failure = std::current_exception();
    }
  }
  if (failure) std::rethrow_exception(failure);
}

void TransformerEncoderLayer::run_group(Tensor& x, const std::vector<int64_t>& seq_offsets,
                                        size_t first, size_t last, Workspace& ws) const {
  const int64_t begin = seq_offsets[first];
  const int64_t end = seq_offsets[last];
  std::vector<int64_t> offsets(seq_offsets.begin() + static_cast<int64_t>(first),
                               seq_offsets.begin() + static_cast<int64_t>(last) + 1);
  for (int64_t& o : offsets) o -= begin;
  Tensor xg = row_view(x, begin, end);
  Tensor qkv = row_view(ws.qkv, begin, end);
  Tensor context = row_view(ws.context, begin, end);
  Tensor projected = row_view(ws.projected, begin, end);
  Tensor intermediate = row_view(ws.intermediate, begin, end);
  run_rows(xg, offsets, qkv, context, projected, intermediate);
}

}  // namespace nle
