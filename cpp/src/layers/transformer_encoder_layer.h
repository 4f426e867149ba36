#pragma once

#include <string>
#include <vector>

#include "layers/layer_norm.h"
#include "layers/linear.h"
#include "layers/self_attention.h"
#include "models/encoder_config.h"

namespace nle {

// Weight names of one encoder layer, relative to the layer's scope.
struct EncoderLayerNames {
  std::vector<std::string> qkv;
  std::string attention_output;
  std::string attention_norm;
  std::string intermediate;
  std::string output;
  std::string output_norm;

  static EncoderLayerNames for_layout(EncoderLayout layout);
};

// A post-norm transformer encoder layer (BERT and DistilBERT):
//   h = LN(x + attention(x)); out = LN(h + W2 act(W1 h)).
class TransformerEncoderLayer {
 public:
  // input_norm: the norm whose output the layer's input is (the previous layer's output
  // norm, or the embeddings' norm), if any; int8 products smooth with it (Linear).
  TransformerEncoderLayer(const Weights& weights, const std::string& scope, const EncoderLayerNames& names,
                          const EncoderConfig& config, const NormParameters& input_norm = {});
  // The parameters of the norm this layer's output comes from.
  NormParameters output_norm() const { return output_norm_.parameters(); }

  // Per-call scratch buffers, sized for T packed tokens.
  struct Workspace {
    Tensor qkv, context, projected, intermediate;
    // intermediate_dtype: the layers' intermediate_dtype().
    Workspace(int64_t tokens, const EncoderConfig& config, DType intermediate_dtype = DType::F32);
  };
  // BF16 where the feed-forward products take and give bf16 (Linear::bf16_io), so that
  // the (tokens, intermediate) activations go between them at half the bytes; else F32.
  DType intermediate_dtype() const;

  // x: (T, hidden), updated in place. With int8 products a batch of several sequences
  // runs in groups of whole sequences (layers/sequence_groups.h).
  void operator()(Tensor& x, const std::vector<int64_t>& seq_offsets, Workspace& ws) const;

 private:
  void run_rows(Tensor& x, const std::vector<int64_t>& seq_offsets, Tensor& qkv, Tensor& context,
                Tensor& projected, Tensor& intermediate) const;

  SelfAttention attention_;
  LayerNorm attention_norm_;
  Linear intermediate_;
  Linear output_;
  LayerNorm output_norm_;
  ops::Activation activation_;
};

}  // namespace nle
