// The encoder and decoder layers of BART, Marian and T5.
//
// Post-norm (BART, Marian):  h = LN(x + attn(x)); ...; out = LN(h + ffn(h)).
// Pre-norm (T5):             h = x + attn(N(x));  ...; out = h + ffn(N(h)).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "layers/feed_forward.h"
#include "layers/norm.h"
#include "layers/seq2seq_attention.h"
#include "models/seq2seq_config.h"

namespace nle {

class Seq2SeqEncoderLayer {
 public:
  // scope: "model.encoder.layers.3." (BART, Marian) or "encoder.block.3." (T5).
  // input_norm: for post-norm layers, the norm whose output the layer's input is (the
  // previous layer's last norm or the embeddings' norm), if any; int8 products smooth
  // with it (Linear). Pre-norm layers smooth with their own norms.
  Seq2SeqEncoderLayer(const Weights& weights, const std::string& scope, const Seq2SeqConfig& config,
                      const NormParameters& input_norm = {});
  // The parameters of the norm the layer's output comes from: the last one for post-norm
  // layers; none (undefined) for pre-norm ones, whose output is a residual sum.
  NormParameters output_norm() const { return pre_norm_ ? NormParameters{} : ffn_norm_.parameters(); }
  // x (T, d_model) packed by seq_offsets, updated in place. With int8 products a batch of
  // several sequences runs in groups of whole sequences (layers/sequence_groups.h).
  void operator()(Tensor& x, const std::vector<int64_t>& seq_offsets, const ops::RelativeBias* bias) const;

 private:
  void run_rows(Tensor& x, const std::vector<int64_t>& seq_offsets, const ops::RelativeBias* bias) const;

  std::unique_ptr<Seq2SeqAttention> attention_;
  Norm attention_norm_;
  std::unique_ptr<FeedForward> ffn_;
  Norm ffn_norm_;
  bool pre_norm_;
};

class Seq2SeqDecoderLayer {
 public:
  // input_norm as for Seq2SeqEncoderLayer; memory_norm: the norm whose output the encoder's
  // states are (T5's final norm, BART's last encoder layer's), if any.
  Seq2SeqDecoderLayer(const Weights& weights, const std::string& scope, const Seq2SeqConfig& config,
                      const NormParameters& input_norm = {}, const NormParameters& memory_norm = {});
  NormParameters output_norm() const { return pre_norm_ ? NormParameters{} : ffn_norm_.parameters(); }

  // Keys and values of the encoder output (S, d_model) for this layer's cross-attention.
  ProjectedMemory project_memory(const Tensor& memory) const {
    return cross_attention_->project_memory(memory);
  }

  // What one decoding step needs besides the layer's input.
  struct Step {
    KvCache* cache;
    int64_t layer;
    const std::vector<int64_t>* rows;
    int64_t step;
    const std::vector<int64_t>* self_offsets;
    const std::vector<int64_t>* self_rows;
    const float* self_bias;  // (heads, step + 1) or null
    const ProjectedMemory* memory_kv;
    const std::vector<int64_t>* memory_offsets;
    const std::vector<int64_t>* memory_rows;
  };
  // x (n, d_model): the inputs of the step's rows, updated in place.
  void operator()(Tensor& x, const Step& step) const;

 private:
  std::unique_ptr<Seq2SeqAttention> self_attention_;
  Norm self_norm_;
  std::unique_ptr<Seq2SeqAttention> cross_attention_;
  Norm cross_norm_;
  std::unique_ptr<FeedForward> ffn_;
  Norm ffn_norm_;
  bool pre_norm_;
};

}  // namespace nle
