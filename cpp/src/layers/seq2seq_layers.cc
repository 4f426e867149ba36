#include "layers/seq2seq_layers.h"

#include <omp.h>

#include "layers/sequence_groups.h"

namespace nle {

namespace {

Seq2SeqAttention::Names attention_names(const Seq2SeqConfig& c, const std::string& scope, bool cross) {
  if (c.model_type == "t5") {
    const std::string s = scope + (cross ? "layer.1.EncDecAttention." : "layer.0.SelfAttention.");
    return {s + "q", s + "k", s + "v", s + "o"};
  }
  const std::string s = scope + (cross ? "encoder_attn." : "self_attn.");
  return {s + "q_proj", s + "k_proj", s + "v_proj", s + "out_proj"};
}

FeedForward::Names ffn_names(const Seq2SeqConfig& c, const std::string& scope, bool decoder) {
  if (c.model_type == "t5") {
    const std::string s = scope + (decoder ? "layer.2" : "layer.1") + ".DenseReluDense.";
    if (c.gated_ffn) return {s + "wi_0", s + "wi_1", s + "wo"};
    return {s + "wi", "", s + "wo"};
  }
  return {scope + "fc1", "", scope + "fc2"};
}

void add_inplace(Tensor& x, const Tensor& y) {
  float* a = x.data<float>();
  const float* b = y.data<float>();
  const int64_t n = x.numel();
#pragma omp parallel for simd schedule(static) if (n > 65536)
  for (int64_t i = 0; i < n; ++i) a[i] += b[i];
}

}  // namespace

Seq2SeqEncoderLayer::Seq2SeqEncoderLayer(const Weights& w, const std::string& scope, const Seq2SeqConfig& c,
                                         const NormParameters& input_norm)
    : pre_norm_(c.pre_norm) {
  const bool t5 = c.model_type == "t5";
  attention_norm_ = Norm(w, scope + (t5 ? "layer.0.layer_norm" : "self_attn_layer_norm"), c.d_model, c.norm_eps,
                         c.rms_norm);
  ffn_norm_ = Norm(w, scope + (t5 ? "layer.1.layer_norm" : "final_layer_norm"), c.d_model, c.norm_eps, c.rms_norm);
  // Which norm's output each block takes (see the top of seq2seq_layers.h).
  attention_ = std::make_unique<Seq2SeqAttention>(
      w, attention_names(c, scope, false), c.d_model, c.encoder_heads, c.encoder_head_dim,
      c.attention_scale(false), c.biases, false, pre_norm_ ? attention_norm_.parameters() : input_norm);
  ffn_ = std::make_unique<FeedForward>(w, ffn_names(c, scope, false), c.d_model, c.encoder_ffn, c.activation,
                                       c.biases,
                                       pre_norm_ ? ffn_norm_.parameters() : attention_norm_.parameters());
}

void Seq2SeqEncoderLayer::operator()(Tensor& x, const std::vector<int64_t>& seq_offsets,
                                     const ops::RelativeBias* bias) const {
  if (ffn_->quantized()) {
    const std::vector<size_t> groups =
        busy_sequence_groups(seq_offsets, kSequenceGroupRows, omp_get_max_threads());
    if (groups.size() > 2) {
      for_each_sequence_group(seq_offsets, groups,
                              [&](int64_t begin, int64_t end, const std::vector<int64_t>& offsets) {
                                Tensor xg = row_view(x, begin, end);
                                run_rows(xg, offsets, bias);
                              });
      return;
    }
  }
  run_rows(x, seq_offsets, bias);
}

void Seq2SeqEncoderLayer::run_rows(Tensor& x, const std::vector<int64_t>& seq_offsets,
                                   const ops::RelativeBias* bias) const {
  Tensor tmp(DType::F32, x.shape());
  Tensor out(DType::F32, x.shape());
  if (pre_norm_) {
    attention_norm_(tmp, x);
    attention_->encode(out, tmp, seq_offsets, bias);
    add_inplace(x, out);
    ffn_norm_(tmp, x);
    (*ffn_)(out, tmp);
    add_inplace(x, out);
  } else {
    attention_->encode(out, x, seq_offsets, bias);
    attention_norm_(x, x, &out);
    (*ffn_)(out, x);
    ffn_norm_(x, x, &out);
  }
}

Seq2SeqDecoderLayer::Seq2SeqDecoderLayer(const Weights& w, const std::string& scope, const Seq2SeqConfig& c,
                                         const NormParameters& input_norm, const NormParameters& memory_norm)
    : pre_norm_(c.pre_norm) {
  const bool t5 = c.model_type == "t5";
  self_norm_ = Norm(w, scope + (t5 ? "layer.0.layer_norm" : "self_attn_layer_norm"), c.d_model, c.norm_eps,
                    c.rms_norm);
  cross_norm_ = Norm(w, scope + (t5 ? "layer.1.layer_norm" : "encoder_attn_layer_norm"), c.d_model, c.norm_eps,
                     c.rms_norm);
  ffn_norm_ = Norm(w, scope + (t5 ? "layer.2.layer_norm" : "final_layer_norm"), c.d_model, c.norm_eps, c.rms_norm);
  self_attention_ = std::make_unique<Seq2SeqAttention>(
      w, attention_names(c, scope, false), c.d_model, c.decoder_heads, c.decoder_head_dim,
      c.attention_scale(true), c.biases, false, pre_norm_ ? self_norm_.parameters() : input_norm);
  cross_attention_ = std::make_unique<Seq2SeqAttention>(
      w, attention_names(c, scope, true), c.d_model, c.decoder_heads, c.decoder_head_dim,
      c.attention_scale(true), c.biases, true, pre_norm_ ? cross_norm_.parameters() : self_norm_.parameters(),
      memory_norm);
  ffn_ =
      std::make_unique<FeedForward>(w, ffn_names(c, scope, true), c.d_model, c.decoder_ffn, c.activation,
                                    c.biases, pre_norm_ ? ffn_norm_.parameters() : cross_norm_.parameters());
}

void Seq2SeqDecoderLayer::operator()(Tensor& x, const Step& s) const {
  Tensor tmp(DType::F32, x.shape());
  Tensor out(DType::F32, x.shape());
  auto self = [&](Tensor& o, const Tensor& in) {
    self_attention_->decode_step(o, in, *s.cache, s.layer, *s.rows, s.step, *s.self_offsets, *s.self_rows,
                                 s.self_bias);
  };
  auto cross = [&](Tensor& o, const Tensor& in) {
    cross_attention_->cross_step(o, in, *s.memory_kv, *s.memory_offsets, *s.memory_rows);
  };
  if (pre_norm_) {
    self_norm_(tmp, x);
    self(out, tmp);
    add_inplace(x, out);
    cross_norm_(tmp, x);
    cross(out, tmp);
    add_inplace(x, out);
    ffn_norm_(tmp, x);
    (*ffn_)(out, tmp);
    add_inplace(x, out);
  } else {
    self(out, x);
    self_norm_(x, x, &out);
    cross(out, x);
    cross_norm_(x, x, &out);
    (*ffn_)(out, x);
    ffn_norm_(x, x, &out);
  }
}

}  // namespace nle
