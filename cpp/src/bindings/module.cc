// nlpengine._core: the nanobind module over the C++ runtime. Python code uses it
// through nlpengine's own facade (python/nlpengine/runtime.py), not directly.
#include <nanobind/nanobind.h>
#include <nanobind/ndarray.h>
#include <nanobind/stl/optional.h>
#include <nanobind/stl/shared_ptr.h>
#include <nanobind/stl/string.h>

#include <cstring>
#include <optional>
#include <vector>

#include "core/parallel.h"
#include "nlpengine/encoder_model.h"
#include "nlpengine/errors.h"
#include "nlpengine/seq2seq_model.h"
#include "nlpengine/version.h"
#include "ops/bf16_gemm.h"
#include "ops/cpu/gemm_library.h"
#include "ops/int16_gemm.h"
#include "ops/int8_gemm.h"

namespace nb = nanobind;
using namespace nb::literals;

namespace {

using IdArray = nb::ndarray<const int64_t, nb::ndim<2>, nb::c_contig, nb::device::cpu>;

// Hands a tensor to NumPy without copying: the array's base capsule keeps the
// tensor's storage alive.
nb::object to_numpy(const nle::Tensor& t) {
  auto* keep = new nle::Tensor(t);
  nb::capsule owner(keep, [](void* p) noexcept { delete static_cast<nle::Tensor*>(p); });
  std::vector<size_t> shape(t.shape().begin(), t.shape().end());
  if (t.dtype() == nle::DType::I64)
    return nb::cast(nb::ndarray<nb::numpy, int64_t>(keep->raw_data(), shape.size(), shape.data(), owner),
                    nb::rv_policy::reference);
  return nb::cast(nb::ndarray<nb::numpy, float>(keep->raw_data(), shape.size(), shape.data(), owner),
                  nb::rv_policy::reference);
}

void check_same_shape(const char* name, const IdArray& a, const IdArray& ids) {
  if (a.shape(0) != ids.shape(0) || a.shape(1) != ids.shape(1))
    throw nle::InvalidInputError(std::string(name) + ": shape (" + std::to_string(a.shape(0)) + ", " +
                                 std::to_string(a.shape(1)) + ") differs from input_ids (" +
                                 std::to_string(ids.shape(0)) + ", " + std::to_string(ids.shape(1)) + ")");
}

nb::tuple encode(const nle::EncoderModel& model, IdArray input_ids, std::optional<IdArray> attention_mask,
                 std::optional<IdArray> token_type_ids) {
  if (attention_mask) check_same_shape("attention_mask", *attention_mask, input_ids);
  if (token_type_ids) check_same_shape("token_type_ids", *token_type_ids, input_ids);
  nle::EncoderOutput out;
  {
    nb::gil_scoped_release release;
    out = model.encode(input_ids.data(), attention_mask ? attention_mask->data() : nullptr,
                       token_type_ids ? token_type_ids->data() : nullptr,
                       static_cast<int64_t>(input_ids.shape(0)), static_cast<int64_t>(input_ids.shape(1)));
  }
  nb::object pooled = out.pooler_output.defined() ? to_numpy(out.pooler_output) : nb::none();
  nb::object logits = out.logits.defined() ? to_numpy(out.logits) : nb::none();
  return nb::make_tuple(to_numpy(out.last_hidden_state), pooled, logits);
}

nb::tuple generate(const nle::Seq2SeqModel& model, IdArray input_ids, std::optional<IdArray> attention_mask,
                   const std::string& options_json) {
  if (attention_mask) check_same_shape("attention_mask", *attention_mask, input_ids);
  nle::GenerationResult out;
  {
    nb::gil_scoped_release release;
    const nle::GenerationOptions options = model.generation_options(options_json);
    out = model.generate(input_ids.data(), attention_mask ? attention_mask->data() : nullptr,
                         static_cast<int64_t>(input_ids.shape(0)), static_cast<int64_t>(input_ids.shape(1)), options);
  }
  return nb::make_tuple(to_numpy(out.sequences), to_numpy(out.scores));
}

nb::object forward(const nle::Seq2SeqModel& model, IdArray input_ids, std::optional<IdArray> attention_mask,
                   IdArray decoder_input_ids) {
  if (attention_mask) check_same_shape("attention_mask", *attention_mask, input_ids);
  if (decoder_input_ids.shape(0) != input_ids.shape(0))
    throw nle::InvalidInputError("decoder_input_ids: batch " + std::to_string(decoder_input_ids.shape(0)) +
                                 " differs from input_ids batch " + std::to_string(input_ids.shape(0)));
  nle::Tensor logits;
  {
    nb::gil_scoped_release release;
    logits = model.forward(input_ids.data(), attention_mask ? attention_mask->data() : nullptr,
                           static_cast<int64_t>(input_ids.shape(0)), static_cast<int64_t>(input_ids.shape(1)),
                           decoder_input_ids.data(), static_cast<int64_t>(decoder_input_ids.shape(1)));
  }
  return to_numpy(logits);
}

nb::dict generation_dict(const nle::GenerationOptions& o) {
  nb::dict d;
  d["max_length"] = o.max_length;
  d["max_new_tokens"] = o.max_new_tokens >= 0 ? nb::cast(o.max_new_tokens) : nb::none();
  d["min_length"] = o.min_length;
  d["min_new_tokens"] = o.min_new_tokens;
  d["num_beams"] = o.num_beams;
  d["length_penalty"] = o.length_penalty;
  d["early_stopping"] = o.early_stopping == nle::EarlyStopping::Never ? nb::cast("never")
                                                                      : nb::cast(o.early_stopping == nle::EarlyStopping::True);
  d["no_repeat_ngram_size"] = o.no_repeat_ngram_size;
  d["repetition_penalty"] = o.repetition_penalty;
  d["forced_bos_token_id"] = o.forced_bos_token_id >= 0 ? nb::cast(o.forced_bos_token_id) : nb::none();
  nb::list forced_eos, eos;
  for (int64_t id : o.forced_eos_token_id) forced_eos.append(id);
  for (int64_t id : o.eos_token_id) eos.append(id);
  d["forced_eos_token_id"] = forced_eos;
  d["eos_token_id"] = eos;
  d["decoder_start_token_id"] = o.decoder_start_token_id;
  d["pad_token_id"] = o.pad_token_id >= 0 ? nb::cast(o.pad_token_id) : nb::none();
  d["do_sample"] = o.do_sample;
  d["temperature"] = o.temperature;
  d["top_k"] = o.top_k;
  d["top_p"] = o.top_p;
  d["num_return_sequences"] = o.num_return_sequences;
  nb::list bad_words, suppress, begin_suppress;
  for (const auto& sequence : o.bad_words_ids) {
    nb::list ids;
    for (int64_t id : sequence) ids.append(id);
    bad_words.append(ids);
  }
  for (int64_t id : o.suppress_tokens) suppress.append(id);
  for (int64_t id : o.begin_suppress_tokens) begin_suppress.append(id);
  d["bad_words_ids"] = bad_words;
  d["suppress_tokens"] = suppress;
  d["begin_suppress_tokens"] = begin_suppress;
  d["renormalize_logits"] = o.renormalize_logits;
  return d;
}

// Messages can quote bytes of a corrupt file that are not valid UTF-8; decode
// them leniently so the Python exception always carries the message.
void set_python_error(PyObject* type, const char* message) {
  PyObject* text = PyUnicode_DecodeUTF8(message, static_cast<Py_ssize_t>(std::strlen(message)),
                                        "backslashreplace");
  PyErr_SetObject(type, text);
  Py_XDECREF(text);
}

}  // namespace

NB_MODULE(_core, m) {
  m.doc() = "nlpengine C++ runtime (private; use the nlpengine package)";
  m.attr("__version__") = NLE_VERSION;

  // Leaked on purpose: they must outlive the interpreter's finalisation.
  static auto* model_error = new nb::exception<nle::ModelError>(m, "ModelError");
  static auto* invalid_input =
      new nb::exception<nle::InvalidInputError>(m, "InvalidInputError", PyExc_ValueError);
  // Registered last, so tried first (nanobind tries translators newest first).
  nb::register_exception_translator([](const std::exception_ptr& p, void*) {
    try {
      std::rethrow_exception(p);
    } catch (const nle::ModelError& e) {
      set_python_error(model_error->ptr(), e.what());
    } catch (const nle::InvalidInputError& e) {
      set_python_error(invalid_input->ptr(), e.what());
    } catch (const nle::Error& e) {
      set_python_error(PyExc_RuntimeError, e.what());
    }
  });

  m.def("default_num_threads", &nle::default_num_threads,
        "Number of threads a model uses when none is requested.");
  m.def("gemm_library", &nle::ops::cpu::gemm_library_description,
        "The library running this process's matrix products, with its version: MKL on Intel "
        "CPUs without AMX, oneDNN elsewhere when installed; NLPENGINE_GEMM_LIBRARY=mkl|onednn overrides.");
  m.def(
      "int8_weight_max", [] { return nle::ops::int8_weight_max(); },
      "The largest code of the int8 compute type's weights: 127 (codes -127..127).");
  m.def(
      "int8_activation_max", [] { return nle::ops::int8_activation_max(); },
      "The largest code of the int8 compute type's activations: 255, or 127 on CPUs without VNNI "
      "where the GEMM library's 8-bit products saturate 16-bit pair sums of larger codes.");
  m.def(
      "int8_arithmetic", [] { return nle::ops::int8_uses_int16() ? "int16" : "int8"; },
      "How compute_type 'int8' multiplies on this CPU: 'int8' (8-bit weights times 8-bit "
      "activations, 7-bit where int8_activation_max() is 127), or 'int16' (8-bit weights times "
      "16-bit activations) where the 8-bit products would lose an activation bit and 16-bit "
      "ones run as fast (AMD family 17h); NLPENGINE_INT8_ARITHMETIC=int8|int16 overrides.");
  m.def(
      "int8_mixed_arithmetic", [] { return nle::ops::int8_mixed_uses_int16() ? "int16" : "int8+bf16"; },
      "How compute_type 'int8-mixed' multiplies on this CPU: 'int16' (8-bit weights, 10-bit for "
      "the error-sensitive products, 16-bit activations) where it has no native bf16 products, "
      "else 'int8+bf16' (int8, the error-sensitive products in bf16).");
  m.def(
      "bf16_arithmetic", [] { return nle::ops::bf16_products_native() ? "bf16" : "float32"; },
      "How compute_type 'bf16' multiplies on this CPU: 'bf16' (weights and inputs rounded to bf16, "
      "float32 sums) where it has native bf16 products, else 'float32' (the weights rounded to bf16, "
      "multiplied by the float32 kernels, inputs not rounded): the GEMM library's bf16 product "
      "without them ran below float32 speed.");

  nb::class_<nle::EncoderModel>(m, "EncoderModel")
      .def_static(
          "load",
          [](const std::string& directory, int threads, const std::string& adapter,
             const std::string& compute_type) {
            nle::LoadOptions options;
            options.num_threads = threads;
            options.adapter_directory = adapter;
            options.compute_type = nle::compute_type_from_name(compute_type);
            nb::gil_scoped_release release;
            return std::const_pointer_cast<nle::EncoderModel>(nle::EncoderModel::load(directory, options));
          },
          "directory"_a, "threads"_a = 0, "adapter"_a = "", "compute_type"_a = "float32")
      .def("encode", &encode, "input_ids"_a, "attention_mask"_a = nb::none(),
           "token_type_ids"_a = nb::none())
      .def_prop_ro("num_threads", &nle::EncoderModel::num_threads)
      .def_prop_ro("directory", &nle::EncoderModel::directory)
      .def_prop_ro("adapter_directory", &nle::EncoderModel::adapter_directory)
      .def_prop_ro("compute_type",
                   [](const nle::EncoderModel& model) { return nle::compute_type_name(model.compute_type()); })
      .def_prop_ro("info", [](const nle::EncoderModel& model) {
        const nle::EncoderInfo& i = model.info();
        nb::dict d;
        d["model_type"] = i.model_type;
        d["vocab_size"] = i.vocab_size;
        d["hidden_size"] = i.hidden_size;
        d["num_layers"] = i.num_layers;
        d["num_heads"] = i.num_heads;
        d["intermediate_size"] = i.intermediate_size;
        d["max_sequence_length"] = i.max_sequence_length;
        d["type_vocab_size"] = i.type_vocab_size;
        d["pad_token_id"] = i.pad_token_id;
        d["has_pooler"] = i.has_pooler;
        d["head"] = i.head;
        d["num_labels"] = i.num_labels;
        return d;
      });

  nb::class_<nle::Seq2SeqModel>(m, "Seq2SeqModel")
      .def_static(
          "load",
          [](const std::string& directory, int threads, const std::string& compute_type) {
            nle::LoadOptions options;
            options.num_threads = threads;
            options.compute_type = nle::compute_type_from_name(compute_type);
            nb::gil_scoped_release release;
            return std::const_pointer_cast<nle::Seq2SeqModel>(nle::Seq2SeqModel::load(directory, options));
          },
          "directory"_a, "threads"_a = 0, "compute_type"_a = "float32")
      .def_static("is_seq2seq_directory", &nle::Seq2SeqModel::is_seq2seq_directory, "directory"_a)
      .def("generate", &generate, "input_ids"_a, "attention_mask"_a = nb::none(), "options_json"_a = "")
      .def("forward", &forward, "input_ids"_a, "attention_mask"_a, "decoder_input_ids"_a)
      .def_prop_ro("generation_defaults",
                   [](const nle::Seq2SeqModel& model) { return generation_dict(model.generation_defaults()); })
      .def_prop_ro("num_threads", &nle::Seq2SeqModel::num_threads)
      .def_prop_ro("compute_type",
                   [](const nle::Seq2SeqModel& model) { return nle::compute_type_name(model.compute_type()); })
      .def_prop_ro("directory", &nle::Seq2SeqModel::directory)
      .def_prop_ro("info", [](const nle::Seq2SeqModel& model) {
        const nle::Seq2SeqInfo& i = model.info();
        nb::dict d;
        d["model_type"] = i.model_type;
        d["vocab_size"] = i.vocab_size;
        d["decoder_vocab_size"] = i.decoder_vocab_size;
        d["d_model"] = i.d_model;
        d["encoder_layers"] = i.encoder_layers;
        d["decoder_layers"] = i.decoder_layers;
        d["num_heads"] = i.num_heads;
        d["max_source_length"] = i.max_source_length;
        d["pad_token_id"] = i.pad_token_id;
        d["decoder_start_token_id"] = i.decoder_start_token_id;
        return d;
      });
}
