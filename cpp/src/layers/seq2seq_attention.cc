#include "layers/seq2seq_attention.h"

#include <cstring>

#include "ops/float16.h"
#include "ops/int8_rows.h"

namespace nle {

Seq2SeqAttention::Seq2SeqAttention(const Weights& weights, const Names& names, int64_t d_model,
                                   int64_t num_heads, int64_t head_dim, float scale, bool biases, bool cross,
                                   const NormParameters& input_norm, const NormParameters& memory_norm)
    : out_(weights, names.out, d_model, num_heads * head_dim, biases),
      num_heads_(num_heads),
      head_dim_(head_dim),
      scale_(scale),
      memory_dtype_(!cross || weights.compute_type() == ComputeType::Float32 ? DType::F32
                    : weights.compute_type() == ComputeType::Int8            ? DType::I8
                                                                             : DType::F16) {
  const int64_t inner = num_heads * head_dim;
  if (cross) {
    q_ = Linear(weights, names.q, inner, d_model, biases, input_norm);
    kv_ = Linear::fused(weights, {names.k, names.v}, inner, d_model, biases, memory_norm);
  } else {
    qkv_ = Linear::fused(weights, {names.q, names.k, names.v}, inner, d_model, biases, input_norm);
    // The encoder's attention in bf16 where the fused projection can write bf16 (as
    // SelfAttention's): the fast compute types on CPUs that multiply bf16 natively.
    const ComputeType type = weights.compute_type();
    bf16_attention_ =
        type != ComputeType::Float32 && qkv_.gives_bf16() && ops::bf16_attention_available(head_dim);
  }
}

void Seq2SeqAttention::encode(Tensor& out, const Tensor& x, const std::vector<int64_t>& seq_offsets,
                              const ops::RelativeBias* bias) const {
  const int64_t inner = num_heads_ * head_dim_;
  if (bf16_attention_) {
    Tensor qkv(DType::BF16, {x.dim(0), 3 * inner});
    qkv_(qkv, x);
    // Rounded to bf16 as they are written where the output projection takes bf16.
    Tensor context(out_.bf16_io() ? DType::BF16 : DType::F32, {x.dim(0), inner});
    const uint16_t* base = qkv.data<uint16_t>();
    ops::packed_self_attention_bf16(context, base, base + inner, base + 2 * inner, 3 * inner, seq_offsets,
                                    num_heads_, head_dim_, scale_, bias);
    out_(out, context);
    return;
  }
  Tensor qkv(DType::F32, {x.dim(0), 3 * inner});
  qkv_(qkv, x);
  Tensor context(DType::F32, {x.dim(0), inner});
  const float* base = qkv.data<float>();
  ops::packed_self_attention(context, base, base + inner, base + 2 * inner, 3 * inner, seq_offsets, num_heads_,
                             head_dim_, scale_, bias);
  out_(out, context);
}

void Seq2SeqAttention::decode_step(Tensor& out, const Tensor& x, KvCache& cache, int64_t layer,
                                   const std::vector<int64_t>& rows, int64_t step,
                                   const std::vector<int64_t>& key_offsets, const std::vector<int64_t>& key_rows,
                                   const float* bias) const {
  const int64_t inner = num_heads_ * head_dim_, n = x.dim(0);
  Tensor qkv(DType::F32, {n, 3 * inner});
  qkv_(qkv, x);
  const float* src = qkv.data<float>();
  ops::GatheredAttention a;
  if (cache.dtype() == DType::F16) {  // bf16, int8-mixed: half the bytes each step reads
    auto* keys = static_cast<uint16_t*>(cache.keys(layer));
    auto* values = static_cast<uint16_t*>(cache.values(layer));
    for (int64_t i = 0; i < n; ++i) {
      const int64_t slot = cache.storage_row(rows[i], step);
      ops::float_to_half(keys + slot * inner, src + i * 3 * inner + inner, inner);
      ops::float_to_half(values + slot * inner, src + i * 3 * inner + 2 * inner, inner);
    }
    a.k_f16 = keys;
    a.v_f16 = values;
  } else if (cache.dtype() == DType::I8) {  // int8: a scale per row and head, as its memory's
    auto* keys = static_cast<int8_t*>(cache.keys(layer));
    auto* values = static_cast<int8_t*>(cache.values(layer));
    float* key_scales = cache.key_scales(layer);
    float* value_scales = cache.value_scales(layer);
    for (int64_t i = 0; i < n; ++i) {
      const int64_t slot = cache.storage_row(rows[i], step);
      ops::quantize_rows_int8(keys + slot * inner, key_scales + slot * num_heads_,
                              src + i * 3 * inner + inner, num_heads_, head_dim_);
      ops::quantize_rows_int8(values + slot * inner, value_scales + slot * num_heads_,
                              src + i * 3 * inner + 2 * inner, num_heads_, head_dim_);
    }
    a.k_i8 = keys;
    a.v_i8 = values;
    a.k_scales = key_scales;
    a.v_scales = value_scales;
  } else {
    auto* keys = static_cast<float*>(cache.keys(layer));
    auto* values = static_cast<float*>(cache.values(layer));
    const size_t bytes = static_cast<size_t>(inner) * sizeof(float);
    for (int64_t i = 0; i < n; ++i) {
      const int64_t slot = cache.storage_row(rows[i], step);
      std::memcpy(keys + slot * inner, src + i * 3 * inner + inner, bytes);
      std::memcpy(values + slot * inner, src + i * 3 * inner + 2 * inner, bytes);
    }
    a.k = keys;
    a.v = values;
  }
  Tensor context(DType::F32, {n, inner});
  a.q = src;
  a.ld_q = 3 * inner;
  a.num_queries = n;
  a.ld_kv = inner;
  a.key_offsets = key_offsets.data();
  a.key_rows = key_rows.data();
  a.bias = bias;
  a.bias_ld = step + 1;
  a.num_heads = num_heads_;
  a.head_dim = head_dim_;
  a.scale = scale_;
  ops::gathered_attention(context.data<float>(), inner, a);
  out_(out, context);
}

namespace {

// kv (S, 2 · heads · d) row-major -> out (2, heads, S, d).
template <typename T>
void to_head_major(T* out, const T* kv, int64_t rows, int64_t heads, int64_t d) {
  const int64_t parts = 2 * heads;  // keys' heads, then values'
  const auto bytes = static_cast<size_t>(d) * sizeof(T);
#pragma omp parallel for schedule(static) if (rows * parts * d > 65536)
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t p = 0; p < parts; ++p)
      std::memcpy(out + (p * rows + r) * d, kv + (r * parts + p) * d, bytes);
}

}  // namespace

ProjectedMemory Seq2SeqAttention::project_memory(const Tensor& memory) const {
  const int64_t rows = memory.dim(0);
  Tensor kv(DType::F32, {rows, 2 * num_heads_ * head_dim_});
  kv_(kv, memory);
  const Shape shape{2, num_heads_, rows, head_dim_};
  if (memory_dtype_ == DType::F16) {
    Tensor half(DType::F16, kv.shape()), out(DType::F16, shape);
    ops::float_to_half(static_cast<uint16_t*>(half.raw_data()), kv.data<float>(), kv.numel());
    to_head_major(static_cast<uint16_t*>(out.raw_data()), static_cast<const uint16_t*>(half.raw_data()), rows,
                  num_heads_, head_dim_);
    return {out, Tensor()};
  }
  if (memory_dtype_ == DType::I8) {  // from the row-major projection: no float head-major copy
    Tensor codes(DType::I8, shape), scales(DType::F32, {2, num_heads_, rows});
    ops::quantize_rows_int8_part_major(codes.data<int8_t>(), scales.data<float>(), kv.data<float>(), rows,
                                       2 * num_heads_, head_dim_);
    return {codes, scales};
  }
  Tensor out(DType::F32, shape);
  to_head_major(out.data<float>(), kv.data<float>(), rows, num_heads_, head_dim_);
  return {out, Tensor()};
}

void Seq2SeqAttention::cross_step(Tensor& out, const Tensor& x, const ProjectedMemory& memory,
                                  const std::vector<int64_t>& key_offsets,
                                  const std::vector<int64_t>& key_rows) const {
  const Tensor& memory_kv = memory.kv;
  const int64_t inner = num_heads_ * head_dim_, n = x.dim(0);
  Tensor q(DType::F32, {n, inner});
  q_(q, x);
  Tensor context(DType::F32, {n, inner});
  ops::GatheredAttention a;
  a.q = q.data<float>();
  a.ld_q = inner;
  a.num_queries = n;
  // memory_kv: (2, heads, S, head_dim) from project_memory.
  const int64_t rows = memory_kv.dim(2), values_at = num_heads_ * rows * head_dim_;
  if (memory_kv.dtype() == DType::I8) {
    a.k_i8 = memory_kv.data<int8_t>();
    a.v_i8 = a.k_i8 + values_at;
    a.k_scales = memory.scales.data<float>();
    a.v_scales = a.k_scales + num_heads_ * rows;
  } else if (memory_kv.dtype() == DType::F16) {
    const auto* halves = static_cast<const uint16_t*>(memory_kv.raw_data());  // dtype_of<uint16_t> is BF16
    a.k_f16 = halves;
    a.v_f16 = halves + values_at;
  } else {
    a.k = memory_kv.data<float>();
    a.v = memory_kv.data<float>() + values_at;
  }
  a.ld_kv = head_dim_;
  a.head_stride = rows * head_dim_;
  a.key_offsets = key_offsets.data();
  a.key_rows = key_rows.data();
  a.num_heads = num_heads_;
  a.head_dim = head_dim_;
  a.scale = scale_;
  ops::gathered_attention(context.data<float>(), inner, a);
  out_(out, context);
}

}  // namespace nle
