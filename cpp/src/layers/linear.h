#pragma once

#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "layers/norm_parameters.h"
#include "layers/weights.h"
#include "nlpengine/compute_type.h"
#include "ops/activation.h"
#include "ops/int16_gemm.h"
#include "ops/int8_gemm.h"
#include "ops/packed_gemm.h"

namespace nle {

// y = act(x Wᵀ + b) with W stored (out_features, in_features) as in PyTorch.
// Built from Weights, the product uses their compute type: float32, or the
// weight converted at load to int8 (per output channel) or bf16.
class Linear {
 public:
  Linear() = default;
  // Reads `scope.weight` and, with has_bias, `scope.bias` (T5 has no biases). input_norm:
  // the norm whose output x is, when it is one; int8 products smooth x with its parameters
  // (ops::smoothing_scales).
  Linear(const Weights& weights, const std::string& scope, int64_t out_features, int64_t in_features,
         bool has_bias = true, const NormParameters& input_norm = {});
  // From tensors already loaded (e.g. an LM head tied to the embeddings); bias may be
  // undefined. The weight may be F32, F16 or BF16 (as a checkpoint stores it: the int8 and
  // int16 products quantize it as it is, the others take it widened to float32).
  Linear(Tensor weight, Tensor bias, ComputeType compute_type = ComputeType::Float32,
         const NormParameters& input_norm = {});
  // Several projections of the same input fused into one (e.g. query, key and
  // value): their weights are concatenated along the output dimension. They share one
  // quantized input, so int8 smoothing (input_norm) fits one part's weight: the last
  // (the value's, whose errors reach the output unsoftened while the query's and key's
  // pass through a softmax; on all-MiniLM-L6-v2 scales fitted to the value's weight gave
  // pooled cosine 0.9967 to float32, scales fitted to all three 0.9947, none 0.9954).
  static Linear fused(const Weights& weights, const std::vector<std::string>& scopes,
                      int64_t out_features_each, int64_t in_features, bool has_bias = true,
                      const NormParameters& input_norm = {});

  // x: (rows, in_features) -> y: (rows, out_features), F32; where bf16_io(), either may
  // also be BF16, and where gives_bf16(), y.
  void operator()(Tensor& y, const Tensor& x, ops::Activation act = ops::Activation::None) const;
  // Whether first's results can reach second quantized, as chain() hands them: both are
  // int8 products and second's input is not smoothed.
  static bool chains(const Linear& first, const Linear& second);
  // y = second(act(first(x))) where chains(first, second): first's int32 sums rescaled,
  // activated and quantized for second row by row while in cache, never float32 in memory
  // (ops::matmul_nt_int8_chain; the same bits as the two products one after the other).
  static void chain(Tensor& y, const Tensor& x, const Linear& first, ops::Activation act,
                    const Linear& second);

  // Whether this product takes and gives BF16 tensors as well as F32 (the bf16 compute
  // type where oneDNN packs bf16 weights, ops::packs_bf16_weights()): one bf16 product
  // feeding another then skips a float32 round trip.
  bool bf16_io() const;
  // Whether y may be BF16, the input of a bf16_io() product: the bf16 products, and the
  // int8 ones (their sums rounded to bf16 as they are rescaled, as that product would
  // round a float32 y: int8-mixed's feed-forward where the CPU multiplies bf16 natively).
  bool gives_bf16() const { return bf16_io() || compute_type_ == ComputeType::Int8; }
  int64_t out_features() const { return out_features_; }
  int64_t in_features() const { return in_features_; }
  // Int8Mixed for int16 products (ops/int16_gemm.h: int8-mixed's, or int8's where it runs
  // in int16); int8 products say Int8.
  ComputeType compute_type() const { return compute_type_; }
  // Whether the product runs in integers (int8 or int16).
  bool quantized() const {
    return compute_type_ == ComputeType::Int8 || compute_type_ == ComputeType::Int8Mixed;
  }

 private:
  // Converts weight_ for compute_type_: packed int8 (with smoothing scales when defined,
  // ops::quantize_weight_int8), packed int16 products for int8-mixed on CPUs without
  // native bf16 products (more weight bits when error_sensitive) and for int8 where
  // ops::int8_uses_int16(), or bf16. A smoothed int8
  // product whose input norm has a bias takes that bias as its input's expected value and
  // subtracts the weight rounding's error on it from its own bias (bias correction, as
  // data-free quantization does with a batch norm's shift).
  void convert(ComputeType compute_type, const Tensor& smoothing = Tensor(), bool error_sensitive = false,
               const Tensor* norm_bias = nullptr);

  // The weight in the GEMM library's layout, made on the first call that uses it, so
  // loading stays a memory map: float32 in MKL's packed form, reordered for oneDNN's
  // matmul primitive or in column panels (ops::pack_weight_f32), bf16 reordered for
  // oneDNN's primitive. A fused float32 weight is packed at load where every product takes
  // the packed copy, so that its concatenation need not be kept (fused()).
  struct LazyPacked {
    std::once_flag once;
    ops::PackedWeight weight;
    // A bf16 weight that only the packed copy serves until it is made, then freed.
    Tensor source;
  };
  const ops::PackedWeight& packed() const;

  Tensor weight_;  // F32 (BF16 for the bf16 compute type); undefined for int8, for a
                   // fused float32 weight packed at load (fused()) and for a bf16 weight
                   // oneDNN packs (ops::packs_bf16_weights(): in packed_ until packed)
  std::shared_ptr<LazyPacked> packed_ = std::make_shared<LazyPacked>();
  ops::Int8Weight int8_;      // for the int8 compute type (packed too)
  ops::Int16Weight int16_;    // for int16 products
  Tensor bias_;
  int64_t out_features_ = 0;
  int64_t in_features_ = 0;
  ComputeType compute_type_ = ComputeType::Float32;
};

}  // namespace nle
