#include "layers/transformer_encoder_layer.h"

#include <omp.h>

#include "layers/sequence_groups.h"

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
                                                 const EncoderLayerNames& names, const EncoderConfig& config,
                                                 const NormParameters& input_norm)
    : attention_(weights, scoped(scope, names.qkv), scope + names.attention_output, config.hidden_size,
                 config.num_heads, input_norm),
      attention_norm_(weights, scope + names.attention_norm, config.hidden_size, config.layer_norm_eps),
      // (attention_norm_ is built first: members are initialised in declaration order)
      intermediate_(weights, scope + names.intermediate, config.intermediate_size, config.hidden_size,
                    /*has_bias=*/true, attention_norm_.parameters()),
      output_(weights.error_sensitive(), scope + names.output, config.hidden_size, config.intermediate_size),
      output_norm_(weights, scope + names.output_norm, config.hidden_size, config.layer_norm_eps),
      activation_(config.activation) {}

TransformerEncoderLayer::Workspace::Workspace(int64_t tokens, const EncoderConfig& config,
                                              DType intermediate_dtype, bool rounded_norms,
                                              bool with_intermediate)
    : qkv(DType::F32, {tokens, 3 * config.hidden_size}),
      context(DType::F32, {tokens, config.hidden_size}),
      projected(DType::F32, {tokens, config.hidden_size}) {
  if (with_intermediate) intermediate = Tensor(intermediate_dtype, {tokens, config.intermediate_size});
  if (rounded_norms) normed_bf16 = Tensor(DType::BF16, {tokens, config.hidden_size});
}

DType TransformerEncoderLayer::intermediate_dtype() const {
  return intermediate_.gives_bf16() && output_.bf16_io() ? DType::BF16 : DType::F32;
}

bool TransformerEncoderLayer::keeps_intermediate() const { return !Linear::chains(intermediate_, output_); }

bool TransformerEncoderLayer::rounds_norms() const {
  return intermediate_.bf16_io() && attention_.takes_bf16();
}

void TransformerEncoderLayer::operator()(Tensor& x, const std::vector<int64_t>& seq_offsets,
                                         Workspace& ws) const {
  // Rounded norms only where this layer's products take them and the workspace holds them.
  const bool rounding = rounds_norms() && ws.normed_bf16.defined();
  const bool input_rounded = rounding && ws.input_rounded;
  ws.input_rounded = false;
  Tensor normed = rounding ? ws.normed_bf16 : Tensor();
  // Layers with a bf16 product (bf16; int8-mixed's second feed-forward product where the
  // CPU multiplies bf16) in large balanced groups, all-integer ones in small groups.
  std::vector<size_t> groups;
  if (intermediate_.bf16_io() || output_.bf16_io()) {
    const int64_t threads = omp_get_max_threads(), tokens = seq_offsets.back();
    if (threads > 1 && tokens >= threads * kBf16GroupMinRows)
      groups = balanced_sequence_groups(
          seq_offsets, threads * ((tokens + threads * kBf16GroupRows - 1) / (threads * kBf16GroupRows)));
  } else if (intermediate_.quantized()) {
    groups = busy_sequence_groups(seq_offsets, kSequenceGroupRows, omp_get_max_threads());
  }
  if (groups.size() > 2) {
    for_each_sequence_group(
        seq_offsets, groups, [&](int64_t begin, int64_t end, const std::vector<int64_t>& offsets) {
          Tensor xg = row_view(x, begin, end);
          // The group's passing activations in this thread's scratch, reused group after
          // group (in its core's cache), not in slices of the batch's buffers.
          Rows rows{group_scratch(0, ws.qkv, end - begin), group_scratch(1, ws.context, end - begin),
                    group_scratch(2, ws.projected, end - begin),
                    ws.intermediate.defined() ? group_scratch(3, ws.intermediate, end - begin) : Tensor(),
                    normed.defined() ? row_view(normed, begin, end) : Tensor()};
          run_rows(xg, offsets, rows, input_rounded);
        });
    ws.input_rounded = rounding;
    return;
  }
  Rows rows{ws.qkv, ws.context, ws.projected, ws.intermediate, normed};
  run_rows(x, seq_offsets, rows, input_rounded);
  ws.input_rounded = rounding;
}

void TransformerEncoderLayer::run_rows(Tensor& x, const std::vector<int64_t>& seq_offsets, Rows& ws,
                                       bool input_rounded) const {
  Tensor* normed = ws.normed_bf16.defined() ? &ws.normed_bf16 : nullptr;
  attention_(ws.projected, input_rounded ? ws.normed_bf16 : x, seq_offsets, ws.qkv, ws.context);
  attention_norm_(x, ws.projected, &x, normed);
  if (Linear::chains(intermediate_, output_)) {  // int8: the intermediate activations go across quantized
    Linear::chain(ws.projected, normed ? *normed : x, intermediate_, activation_, output_);
  } else {
    intermediate_(ws.intermediate, normed ? *normed : x, activation_);
    output_(ws.projected, ws.intermediate);
  }
  output_norm_(x, ws.projected, &x, normed);  // the next layer's input, rounded as well
}

}  // namespace nle
