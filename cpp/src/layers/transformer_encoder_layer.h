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
    // Where the layers round their norms (rounds_norms()): (T, hidden) BF16, the latest norm's
    // output rounded to bf16; else undefined.
    Tensor normed_bf16;
    // Whether normed_bf16 holds the next layer's input x rounded (the layer before wrote both).
    bool input_rounded = false;
    // intermediate_dtype, rounded_norms, with_intermediate: the layers' intermediate_dtype(),
    // rounds_norms() and keeps_intermediate() (without it intermediate is undefined).
    Workspace(int64_t tokens, const EncoderConfig& config, DType intermediate_dtype = DType::F32,
              bool rounded_norms = false, bool with_intermediate = true);
  };
  // BF16 where the feed-forward's output product takes bf16 (Linear::bf16_io) and its first
  // product gives bf16 (Linear::gives_bf16: a bf16 product, or int8-mixed's int8 one, which
  // rounds its rescaled sums), so that the (tokens, intermediate) activations go between
  // them at half the bytes and without a rounding pass of their own; else F32.
  DType intermediate_dtype() const;
  // Whether the products that take this layer's norms' outputs (the feed-forward's first,
  // the next layer's query/key/value) multiply bf16 and take BF16 inputs: the norms then
  // write their outputs rounded to bf16 as well, in the same pass, where each product would
  // round them in a pass of its own.
  bool rounds_norms() const;
  // Whether the feed-forward's (tokens, intermediate) activations are kept in a tensor: not
  // where its two products are int8 ones that hand them across quantized (Linear::chain).
  bool keeps_intermediate() const;

  // x: (T, hidden), updated in place. With int8 or bf16 products a batch of several
  // sequences runs in groups of whole sequences (layers/sequence_groups.h).
  void operator()(Tensor& x, const std::vector<int64_t>& seq_offsets, Workspace& ws) const;

 private:
  // The workspace's buffers, or their rows of one group of sequences.
  struct Rows {
    Tensor qkv, context, projected, intermediate, normed_bf16;
  };
  void run_rows(Tensor& x, const std::vector<int64_t>& seq_offsets, Rows& ws, bool input_rounded) const;

  SelfAttention attention_;
  LayerNorm attention_norm_;
  Linear intermediate_;
  Linear output_;
  LayerNorm output_norm_;
  ops::Activation activation_;
};

}  // namespace nle
