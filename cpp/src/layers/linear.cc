#include "layers/linear.h"

#include <sys/mman.h>

#include <cstring>
#include <limits>
#include <vector>

#include "core/mapped_file.h"
#include "ops/bf16_gemm.h"
#include "ops/cpu/gemm_library.h"
#include "ops/gemm.h"
#include "ops/int16_gemm.h"

namespace nle {

namespace {
bool use_packed_f32(const Tensor& x) { return x.rank() == 2 && x.dim(0) <= ops::packed_f32_max_rows(); }

// Whether every float32 product, whatever its row count, can take the packed weight (panels
// or oneDNN's primitive; MKL's packed product only up to packed_f32_max_rows).
bool packed_f32_for_all_rows() { return ops::packed_f32_max_rows() == std::numeric_limits<int64_t>::max(); }

// Whether this product runs in 16-bit integers (ops/int16_gemm.h): int8-mixed's where the
// CPU has no native bf16 products, int8's where its 8-bit ones would lose an input bit for
// no speed (ops::int8_uses_int16()).
bool int16_products(ComputeType compute_type) {
  return (compute_type == ComputeType::Int8Mixed && ops::int8_mixed_uses_int16()) ||
         (compute_type == ComputeType::Int8 && ops::int8_uses_int16());
}

// The weight codes of an int16 product: 8 bits (stored in 8) for most, 10 for the
// error-sensitive products. On all-MiniLM-L6-v2 (a float simulation, real weights, random
// sentences) 8-bit weights everywhere gave mean-pooled cosine 0.99907 to float32; float32
// for the value and output projections instead 0.99983; 10-bit weights everywhere 0.99995.
constexpr int32_t kWeightCodes = 127;
constexpr int32_t kSensitiveWeightCodes = 511;

// The int8 smoothing scales of weight w for input_norm's output; undefined where there is
// no norm or the product is not int8 (16-bit activations need no smoothing: it would only
// move their rounding into the weights').
Tensor smoothing_for(const Tensor& w, const NormParameters& input_norm, ComputeType compute_type) {
  if (!input_norm.defined() ||
      (compute_type != ComputeType::Int8 && compute_type != ComputeType::Int8Mixed) ||
      int16_products(compute_type))
    return Tensor();
  return ops::smoothing_scales(w, input_norm.weight, input_norm.bias.defined() ? &input_norm.bias : nullptr);
}
// w rounded to bf16 in pages of its own, outside the buffer pool, given back to the system
// when the tensor is freed. Such a copy only waits for its first use, which packs it and
// frees it (Linear::packed()); from the pool, it was kept there for reuse (bart-base after a
// generate call: 466 MB of weights and buffers, 275 with pages of its own).
Tensor bf16_pages_of_its_own(const Tensor& w) {
  const size_t bytes = static_cast<size_t>(w.numel()) * sizeof(uint16_t);
  void* pages = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (pages == MAP_FAILED)
    throw Error("out of memory rounding a " + shape_to_string(w.shape()) + " weight to bf16");
  std::shared_ptr<const void> owner(pages, [bytes](const void* p) { ::munmap(const_cast<void*>(p), bytes); });
  Tensor copy = Tensor::view(DType::BF16, w.shape(), pages, std::move(owner));
  ops::to_bf16(copy, w);
  return copy;
}
}  // namespace

Linear::Linear(const Weights& weights, const std::string& scope, int64_t out_features, int64_t in_features,
               bool has_bias, const NormParameters& input_norm)
    : weight_(weights.require_table(scope + ".weight", {out_features, in_features})) {
  if (has_bias) bias_ = weights.require(scope + ".bias", {out_features});
  convert(weights.compute_type(), smoothing_for(weight_, input_norm, weights.compute_type()),
          weights.is_error_sensitive(), input_norm.bias.defined() ? &input_norm.bias : nullptr);
}

Linear::Linear(Tensor weight, Tensor bias, ComputeType compute_type, const NormParameters& input_norm)
    : weight_(std::move(weight)), bias_(std::move(bias)) {
  convert(compute_type, smoothing_for(weight_, input_norm, compute_type), false,
          input_norm.bias.defined() ? &input_norm.bias : nullptr);
}

void Linear::convert(ComputeType compute_type, const Tensor& smoothing, bool error_sensitive,
                     const Tensor* norm_bias) {
  out_features_ = weight_.dim(0);
  in_features_ = weight_.dim(1);
  compute_type_ = compute_type;
  const bool quantized = int16_products(compute_type) || compute_type == ComputeType::Int8 ||
                         compute_type == ComputeType::Int8Mixed;
  if (!quantized && weight_.dtype() != DType::F32) {
    // A checkpoint's F16 or BF16 weight: widened here for the float32 and bf16 products
    // (the quantizers read it a row at a time as stored, ops/weight_rows.h), its pages given
    // back.
    const Tensor stored = weight_;
    weight_ = stored.to_float32();
    release_mapped_pages(stored.raw_data(), stored.nbytes());
  }
  if (int16_products(compute_type)) {
    int16_ = ops::quantize_weight_int16(weight_, error_sensitive ? kSensitiveWeightCodes : kWeightCodes);
    compute_type_ = ComputeType::Int8Mixed;  // an int16 product, whichever type asked for it
    release_mapped_pages(weight_.raw_data(), weight_.nbytes());
    weight_ = Tensor();
    return;
  }
  switch (compute_type) {
    case ComputeType::Float32:
      if (packed_f32_for_all_rows() && weight_.defined() &&
          !in_mapped_file(weight_.raw_data(), weight_.nbytes())) {
        // A weight in memory of its own (converted from a checkpoint's F16 or BF16, or
        // made at load) is packed now, and the plain copy freed: packed lazily, both stayed
        // for the model's lifetime (bart-base from an F16 file, generation: peak RSS 1,598
        // MB against 762 from the float32 file). A memory-mapped weight keeps loading a
        // map: its pages are given back once packed (packed()).
        std::call_once(packed_->once, [&] { packed_->weight = ops::pack_weight_f32(weight_); });
        weight_ = Tensor();
      }
      break;
    case ComputeType::Int8:
    case ComputeType::Int8Mixed:  // this product is int8 (error_sensitive() picks the others)
      compute_type_ = ComputeType::Int8;
      int8_ = ops::quantize_weight_int8(weight_, /*pack=*/true, smoothing.defined() ? &smoothing : nullptr,
                                        smoothing.defined() ? norm_bias : nullptr);
      if (int8_.rounding_bias.defined()) {
        // On all-MiniLM-L6-v2 (Sapphire Rapids host): the default NER model's entity F1
        // against its float32 self 0.9827 -> 0.9858 (int8), sentiment agreement 0.9954 ->
        // 0.9948 (int8) and 0.9969 -> 0.9979 (int8-mixed), mean pooled cosine on random
        // sentences 0.998190 -> 0.998219 (int8), 0.999556 -> 0.999574 (int8-mixed).
        Tensor corrected(DType::F32, {out_features_});
        const float* rounding = int8_.rounding_bias.data<float>();
        for (int64_t n = 0; n < out_features_; ++n)
          corrected.data<float>()[n] = (bias_.defined() ? bias_.data<float>()[n] : 0.f) - rounding[n];
        bias_ = corrected;
      }
      release_mapped_pages(weight_.raw_data(), weight_.nbytes());
      weight_ = Tensor();
      break;
    case ComputeType::BFloat16: {
      const Tensor original = weight_;
      weight_ = ops::packs_bf16_weights() ? bf16_pages_of_its_own(original) : ops::to_bf16(original);
      release_mapped_pages(original.raw_data(), original.nbytes());
      if (!ops::bf16_products_native()) {
        // No bf16 product on this CPU (AVX2 alone): MKL's ran all-MiniLM-L6-v2 at 39.4
        // sentences/s where float32 runs 42.4 (AMD EPYC). The weight keeps its bf16 values,
        // in float32, for the float32 kernels; the inputs are not rounded.
        weight_ = weight_.to_float32();
        compute_type_ = ComputeType::Float32;
        if (packed_f32_for_all_rows()) {
          // Every product takes the packed copy: the plain one is not kept beside it (peak
          // RSS of all-MiniLM-L6-v2 300 MB, float32 254).
          std::call_once(packed_->once, [&] { packed_->weight = ops::pack_weight_f32(weight_); });
          weight_ = Tensor();
        }
      } else if (ops::packs_bf16_weights()) {
        // Every product takes the packed copy (operator()): the plain bf16 weight waits in
        // packed_ for the first use, which packs it and frees it (packed()). Kept beside its
        // packed copy, it stayed for the model's lifetime (bart-base after a generate call:
        // 542 MB of weights and buffers, 275 without). Packed here at load instead (and the
        // plain copy freed at once), bart-base's bf16 generation from one source ran 5-25%
        // slower in alternating runs on 4 KB pages, for reasons not found.
        packed_->source = weight_;
        weight_ = Tensor();
      }
      break;
    }
  }
}

Linear Linear::fused(const Weights& weights, const std::vector<std::string>& scopes,
                     int64_t out_features_each, int64_t in_features, bool has_bias,
                     const NormParameters& input_norm) {
  const int64_t parts = static_cast<int64_t>(scopes.size());
  Linear fused;
  // A float32 weight that every product takes packed is packed here, from a concatenation
  // that is freed right after: kept (packing is otherwise lazy), it stayed resident beside
  // its packed copy for the model's lifetime, the parts' own pages being a memory map
  // that is given back (BART-base: 113 MB of self-attention q, k, v and cross-attention
  // k, v; all-MiniLM-L6-v2: 11 MB). The plain weight then never exists: operator() takes
  // the packed copy for every input.
  const bool pack_now = weights.compute_type() == ComputeType::Float32 && packed_f32_for_all_rows();
  const Shape shape{parts * out_features_each, in_features};
  std::vector<float> concatenation;
  if (pack_now) {
    concatenation.resize(static_cast<size_t>(shape_numel(shape)));
    fused.weight_ = Tensor::view(DType::F32, shape, concatenation.data(), nullptr);
  } else {
    fused.weight_ = Tensor(DType::F32, shape);
  }
  if (has_bias) fused.bias_ = Tensor(DType::F32, {parts * out_features_each});
  for (int64_t p = 0; p < parts; ++p) {
    const Tensor w = weights.require(scopes[p] + ".weight", {out_features_each, in_features});
    std::memcpy(fused.weight_.data<float>() + p * out_features_each * in_features, w.data<float>(),
                w.nbytes());
    release_mapped_pages(w.raw_data(), w.nbytes());
    if (has_bias) {
      const Tensor b = weights.require(scopes[p] + ".bias", {out_features_each});
      std::memcpy(fused.bias_.data<float>() + p * out_features_each, b.data<float>(), b.nbytes());
    }
  }
  const Tensor last_part = Tensor::view(
      DType::F32, {out_features_each, in_features},
      fused.weight_.data<float>() + (parts - 1) * out_features_each * in_features, fused.weight_.owner());
  fused.convert(weights.compute_type(), smoothing_for(last_part, input_norm, weights.compute_type()), false,
                input_norm.bias.defined() ? &input_norm.bias : nullptr);
  if (pack_now) {
    std::call_once(fused.packed_->once, [&] { fused.packed_->weight = ops::pack_weight_f32(fused.weight_); });
    fused.weight_ = Tensor();
  }
  return fused;
}

const ops::PackedWeight& Linear::packed() const {
  std::call_once(packed_->once, [this] {
    packed_->weight = compute_type_ == ComputeType::BFloat16
                          ? ops::pack_weight_bf16(packed_->source.defined() ? packed_->source : weight_)
                          : ops::pack_weight_f32(weight_);
    packed_->source = Tensor();
    // Where every product of 2-D inputs takes the packed copy, the memory-mapped weight's
    // pages need not stay resident beside it.
    if (compute_type_ == ComputeType::Float32 && packed_f32_for_all_rows())
      release_mapped_pages(weight_.raw_data(), weight_.nbytes());
  });
  return packed_->weight;
}

bool Linear::chains(const Linear& first, const Linear& second) {
  return first.compute_type_ == ComputeType::Int8 && second.compute_type_ == ComputeType::Int8 &&
         !second.int8_.input_scale_inverse.defined();
}

void Linear::chain(Tensor& y, const Tensor& x, const Linear& first, ops::Activation act,
                   const Linear& second) {
  if (!chains(first, second)) throw Error("Linear::chain: the products are not two int8 ones");
  ops::matmul_nt_int8_chain(y, x, first.int8_, first.bias_.defined() ? &first.bias_ : nullptr, act,
                            second.int8_, second.bias_.defined() ? &second.bias_ : nullptr);
}

bool Linear::bf16_io() const { return compute_type_ == ComputeType::BFloat16 && ops::packs_bf16_weights(); }

void Linear::operator()(Tensor& y, const Tensor& x, ops::Activation act) const {
  switch (compute_type_) {
    case ComputeType::Float32:
      if (use_packed_f32(x)) {
        ops::matmul_nt_packed(y, x, packed(), bias_.defined() ? &bias_ : nullptr, act);
        return;
      }
      if (!weight_.defined() && x.rank() > 2 && y.rank() == x.rank()) {
        // Packed at load (fused): the leading dimensions of x and y as rows.
        Tensor y_rows = y.reshape({y.numel() / out_features_, out_features_});
        ops::matmul_nt_packed(y_rows, x.reshape({x.numel() / in_features_, in_features_}), packed(),
                              bias_.defined() ? &bias_ : nullptr, act);
        return;
      }
      ops::matmul_nt(y, x, weight_);
      break;
    case ComputeType::Int8:
      // The bias and activation are applied while the int32 sums are rescaled: no extra
      // pass over y.
      ops::matmul_nt_int8(y, x, int8_, bias_.defined() ? &bias_ : nullptr, act);
      return;
    case ComputeType::Int8Mixed:  // int16 products (int8 ones are left as Int8 by convert())
      ops::matmul_nt_int16(y, x, int16_, bias_.defined() ? &bias_ : nullptr, act);
      return;
    case ComputeType::BFloat16:
      // oneDNN's bf16 matmul on the weight reordered for it, the bias and activation applied
      // by its kernel (MKL takes the plain weight).
      if (bf16_io()) {
        if (x.rank() == 2) {
          ops::matmul_nt_bf16_packed(y, x, packed(), bias_.defined() ? &bias_ : nullptr, act);
        } else {
          // The leading dimensions of x and y as rows: the plain weight is not kept.
          Tensor y_rows = y.reshape({y.numel() / out_features_, out_features_});
          ops::matmul_nt_bf16_packed(y_rows, x.reshape({x.numel() / in_features_, in_features_}), packed(),
                                     bias_.defined() ? &bias_ : nullptr, act);
        }
        return;
      }
      ops::matmul_nt_bf16(y, x, weight_);
      break;
  }
  if (bias_.defined() || act != ops::Activation::None)
    ops::bias_activation(y, bias_.defined() ? &bias_ : nullptr, act);
}

}  // namespace nle
