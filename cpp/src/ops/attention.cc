#include "ops/attention.h"

#include <string>

#include "ops/check.h"
#include "ops/cpu/attention_tiles_bf16.h"

namespace nle::ops {

namespace {
// out's shape, the strides and the offsets against the heads and the packed tokens.
void check_packed(const char* name, const Tensor& out, int64_t ld_in, const std::vector<int64_t>& seq_offsets,
                  int64_t num_heads, int64_t head_dim, int64_t ld_v) {
  if (out.device() != Device::CPU) throw Error(std::string(name) + " has no CUDA implementation yet");
  if (out.dtype() != DType::F32 && out.dtype() != DType::BF16)
    throw InvalidInputError(std::string(name) + ": expected an F32 or BF16 output, got " +
                            dtype_name(out.dtype()));
  check_rank(name, "out", out, 2);
  const int64_t width = num_heads * head_dim;
  if (out.dim(1) != width || ld_in < width || (ld_v != 0 && ld_v < width))
    throw InvalidInputError(std::string(name) + ": output " + shape_to_string(out.shape()) +
                            " or row stride " + std::to_string(ld_in) + " does not fit " +
                            std::to_string(num_heads) + " heads of " + std::to_string(head_dim));
  if (seq_offsets.empty() || seq_offsets.front() != 0 || seq_offsets.back() != out.dim(0))
    throw InvalidInputError(std::string(name) + ": sequence offsets do not cover the " +
                            std::to_string(out.dim(0)) + " packed tokens");
  for (size_t s = 1; s < seq_offsets.size(); ++s)
    if (seq_offsets[s] < seq_offsets[s - 1])
      throw InvalidInputError(std::string(name) + ": sequence offsets must not decrease");
}
}  // namespace

void packed_self_attention(Tensor& out, const float* q, const float* k, const float* v, int64_t ld_in,
                           const std::vector<int64_t>& seq_offsets, int64_t num_heads, int64_t head_dim,
                           float scale, const RelativeBias* bias, int64_t ld_v) {
  check_packed("packed_self_attention", out, ld_in, seq_offsets, num_heads, head_dim, ld_v);
  const int64_t num_seqs = static_cast<int64_t>(seq_offsets.size()) - 1, width = num_heads * head_dim;
  if (out.dtype() == DType::BF16)
    cpu::packed_self_attention_f32(out.data<uint16_t>(), q, k, v, seq_offsets.data(), num_seqs, num_heads,
                                   head_dim, ld_in, width, scale, bias, ld_v);
  else
    cpu::packed_self_attention_f32(out.data<float>(), q, k, v, seq_offsets.data(), num_seqs, num_heads,
                                   head_dim, ld_in, width, scale, bias, ld_v);
}

void packed_self_attention_bf16(Tensor& out, const uint16_t* q, const uint16_t* k, const uint16_t* v,
                                int64_t ld_in, const std::vector<int64_t>& seq_offsets, int64_t num_heads,
                                int64_t head_dim, float scale, const RelativeBias* bias, int64_t ld_v) {
  check_packed("packed_self_attention_bf16", out, ld_in, seq_offsets, num_heads, head_dim, ld_v);
  if (!bf16_attention_available(head_dim))
    throw Error("packed_self_attention_bf16: needs AVX512-BF16 and heads a multiple of 16 wide (got " +
                std::to_string(head_dim) + ")");
  if (ld_in % 2 != 0)  // a pair of a key's elements is read as one 32-bit word
    throw InvalidInputError("packed_self_attention_bf16: the row stride of q and k must be even, got " +
                            std::to_string(ld_in));
  const int64_t num_seqs = static_cast<int64_t>(seq_offsets.size()) - 1, width = num_heads * head_dim;
  if (out.dtype() == DType::BF16)
    cpu::packed_self_attention_bf16(out.data<uint16_t>(), q, k, v, seq_offsets.data(), num_seqs, num_heads,
                                    head_dim, ld_in, width, scale, bias, ld_v);
  else
    cpu::packed_self_attention_bf16(out.data<float>(), q, k, v, seq_offsets.data(), num_seqs, num_heads,
                                    head_dim, ld_in, width, scale, bias, ld_v);
}

bool bf16_attention_available(int64_t head_dim) { return cpu::bf16_attention_tiles_fit(head_dim); }

void gathered_attention(float* out, int64_t ld_out, const GatheredAttention& a) {
  const int kinds = (a.k || a.v) + (a.k_f16 || a.v_f16) + (a.k_i8 || a.v_i8);
  const bool complete =
      (a.k && a.v) || (a.k_f16 && a.v_f16) || (a.k_i8 && a.v_i8 && a.k_scales && a.v_scales);
  if (kinds > 1)
    throw InvalidInputError(
        "gathered_attention: keys and values of more than one kind (float32, half, int8)");
  if (!out || !a.q || !complete || !a.key_offsets || (a.key_offsets[a.num_queries] > 0 && !a.key_rows))
    throw InvalidInputError("gathered_attention: missing buffer");
  if (a.k_i8 && (a.head_dim <= 0 || a.ld_kv % a.head_dim != 0 || a.head_offset() % a.head_dim != 0))
    throw InvalidInputError(
        "gathered_attention: int8 keys and values need a row stride and a head stride "
        "that are multiples of head_dim (" +
        std::to_string(a.head_dim) + ")");
  const int64_t width = a.num_heads * a.head_dim;
  if (ld_out < width || a.ld_q < width || (a.head_stride == 0 && a.ld_kv < width))
    throw InvalidInputError("gathered_attention: a row stride is narrower than " + std::to_string(a.num_heads) +
                            " heads of " + std::to_string(a.head_dim));
  if (a.head_stride != 0 && (a.head_stride < a.head_dim || a.ld_kv < a.head_dim))
    throw InvalidInputError(
        "gathered_attention: a head-major store needs a row stride and a head stride of at "
        "least head_dim (" +
        std::to_string(a.head_dim) + ")");
  for (int64_t i = 0; i < a.num_queries; ++i)
    if (a.key_offsets[i + 1] < a.key_offsets[i])
      throw InvalidInputError("gathered_attention: key offsets must not decrease");
  cpu::gathered_attention_f32(out, ld_out, a);
}

}  // namespace nle::ops
