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
#include "nlpengine/version.h"

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

  nb::class_<nle::EncoderModel>(m, "EncoderModel")
      .def_static(
          "load",
          [](const std::string& directory, int threads, const std::string& adapter) {
            nle::LoadOptions options;
            options.num_threads = threads;
            options.adapter_directory = adapter;
            nb::gil_scoped_release release;
            return std::const_pointer_cast<nle::EncoderModel>(nle::EncoderModel::load(directory, options));
          },
          "directory"_a, "threads"_a = 0, "adapter"_a = "")
      .def("encode", &encode, "input_ids"_a, "attention_mask"_a = nb::none(),
           "token_type_ids"_a = nb::none())
      .def_prop_ro("num_threads", &nle::EncoderModel::num_threads)
      .def_prop_ro("directory", &nle::EncoderModel::directory)
      .def_prop_ro("adapter_directory", &nle::EncoderModel::adapter_directory)
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
}
