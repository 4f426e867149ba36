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
  TransformerEncoderLayer(const Weights& weights, const std::string& scope,
                          const EncoderLayerNames& names, const EncoderConfig& config);

  // Per-call scratch buffers, sized for T packed tokens.
  struct Workspace {
    Tensor qkv, context, projected, intermediate;
    Workspace(int64_t tokens, const EncoderConfig& config);
  };

  // x: (T, hidden), updated in place. With int8 products a batch of several sequences
  // runs in groups of whole sequences of at least kGroupRows tokens, one group per thread
  // at a time: a group's activations (queries, keys, values, intermediate rows, quantized
  // rows and int32 sums) then stay in the core's L2 cache through the whole layer instead
  // of streaming through memory between the many short passes around each product, and
  // no pass waits for the other threads (measured 15% faster on MiniLM). float32 and bf16
  // keep whole-batch products, where the GEMM library is faster than on small groups, and
  // a single group runs each operation on all threads.
  void operator()(Tensor& x, const std::vector<int64_t>& seq_offsets, Workspace& ws) const;

  static constexpr int64_t kGroupRows = 64;
  // Sequence indices where groups start, then the sequence count: each group holds
  // consecutive sequences and at least min_rows tokens (the last may hold fewer).
  static std::vector<size_t> sequence_groups(const std::vector<int64_t>& seq_offsets,
                                             int64_t min_rows);

 private:
  void run_rows(Tensor& x, const std::vector<int64_t>& seq_offsets, Tensor& qkv, Tensor& context,
                Tensor& projected, Tensor& intermediate) const;
  void run_in_groups(Tensor& x, const std::vector<int64_t>& seq_offsets,
                     const std::vector<size_t>& groups, Workspace& ws) const;
  // Sequences [first, last) of the batch through the whole layer on the calling thread.
  void run_group(Tensor& x, const std::vector<int64_t>& seq_offsets, size_t first, size_t last,
                 Workspace& ws) const;

  SelfAttention attention_;
  LayerNorm attention_norm_;
  Linear intermediate_;
  Linear output_;
  LayerNorm output_norm_;
  ops::Activation activation_;
};

}  // namespace nle
