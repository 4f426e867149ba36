"""Bad encoder-decoder files, inputs and generation options raise clean errors that
name the file, tensor, key or option, and never crash the process."""

from __future__ import annotations

import json
import shutil

import nlpengine
import numpy as np
import pytest
from safetensors.numpy import load_file, save_file
from seq2seq_models import SEQ2SEQ_CONFIGS, SEQ2SEQ_VOCAB, save_seq2seq


@pytest.fixture(scope="module", params=["bart", "t5"])
def good_dir(request, tmp_path_factory):
    path = tmp_path_factory.mktemp(f"good_{request.param}")
    save_seq2seq(path, SEQ2SEQ_CONFIGS[request.param])
    return path


@pytest.fixture
def model_dir(good_dir, tmp_path):
    copy = tmp_path / "model"
    shutil.copytree(good_dir, copy)
    return copy


def _rewrite_tensors(path, change):
    tensors = load_file(path / "model.safetensors")
    change(tensors)
    save_file(tensors, path / "model.safetensors", metadata={"format": "pt"})


def _one_layer_tensor(path) -> str:
    names = sorted(load_file(path / "model.safetensors"))
    return next(n for n in names if ".0." in n and n.endswith("weight") and "norm" not in n)


def test_missing_tensor_names_file_and_tensor(model_dir):
    name = _one_layer_tensor(model_dir)
    _rewrite_tensors(model_dir, lambda t: t.pop(name))
    with pytest.raises(nlpengine.ModelError, match=rf"model\.safetensors.*{name}"):
        nlpengine.load(model_dir)


def test_wrong_shape_names_tensor_and_config(model_dir):
    name = _one_layer_tensor(model_dir)

    def shrink(tensors):
        tensors[name] = np.ascontiguousarray(tensors[name][:-1])

    _rewrite_tensors(model_dir, shrink)
    with pytest.raises(nlpengine.ModelError, match=rf"{name}.*config\.json"):
        nlpengine.load(model_dir)


def test_truncated_weights_file(model_dir):
    data = (model_dir / "model.safetensors").read_bytes()
    (model_dir / "model.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(nlpengine.ModelError, match="model.safetensors"):
        nlpengine.load(model_dir)


@pytest.mark.parametrize(
    "change", [{"d_model": -4}, {"vocab_size": "many"}, {"feed_forward_proj": "gated-gelu-x"}]
)
def test_bad_config_value_names_key(model_dir, change):
    config = json.loads((model_dir / "config.json").read_text())
    if "feed_forward_proj" in change and config["model_type"] != "t5":
        change = {"activation_function": "no-such-activation"}
    config.update(change)
    (model_dir / "config.json").write_text(json.dumps(config))
    key = next(iter(change))
    with pytest.raises(nlpengine.ModelError, match=rf"config\.json.*{key}"):
        nlpengine.load(model_dir)


@pytest.mark.parametrize(
    "content, key",
    [
        ({"num_beams": "four"}, "num_beams"),
        ({"bad_words_ids": [[3], "x"]}, "bad_words_ids"),
        # 2**64 - 1 must not wrap to -1 (the unset value), nor 1e300 convert as the CPU has it.
        ({"pad_token_id": 2**64 - 1}, "pad_token_id"),
        ({"max_length": 1e300}, "max_length"),
    ],
)
def test_bad_generation_config_names_file(model_dir, content, key):
    (model_dir / "generation_config.json").write_text(json.dumps(content))
    with pytest.raises(nlpengine.ModelError, match=rf"generation_config\.json.*{key}"):
        nlpengine.load(model_dir)


@pytest.mark.parametrize(
    "content, key",
    [
        ({"pad_token_id": SEQ2SEQ_VOCAB + 5}, "pad_token_id"),
        ({"eos_token_id": [2, SEQ2SEQ_VOCAB]}, "eos_token_id"),
        ({"decoder_start_token_id": SEQ2SEQ_VOCAB}, "decoder_start_token_id"),
        ({"forced_bos_token_id": SEQ2SEQ_VOCAB + 1}, "forced_bos_token_id"),
        ({"suppress_tokens": [4, SEQ2SEQ_VOCAB + 3]}, "suppress_tokens"),
        ({"bad_words_ids": [[4, SEQ2SEQ_VOCAB * 2]]}, "bad_words_ids"),
    ],
)
def test_generation_defaults_outside_the_vocabulary_name_the_file(model_dir, content, key):
    """A token id of the directory's generation defaults outside the vocabulary is an
    error of the file at load (it was one of every generate() call, naming no file)."""
    (model_dir / "generation_config.json").write_text(json.dumps(content))
    with pytest.raises(nlpengine.ModelError, match=rf"generation_config\.json.*{key}.*outside"):
        nlpengine.load(model_dir)


@pytest.mark.parametrize("key", ["decoder_start_token_id", "pad_token_id"])
def test_config_token_ids_the_generation_defaults_fall_back_on_name_config(model_dir, key):
    """Without generation_config.json the defaults come from config.json (as
    transformers' GenerationConfig.from_model_config reads them), and so do the start
    token and, with no eos, the padding token that generate() falls back on."""
    (model_dir / "generation_config.json").unlink(missing_ok=True)
    config = json.loads((model_dir / "config.json").read_text())
    config[key] = SEQ2SEQ_VOCAB + 7
    if key == "pad_token_id":
        config.pop("eos_token_id", None)
        config.pop("forced_eos_token_id", None)
    (model_dir / "config.json").write_text(json.dumps(config))
    with pytest.raises(nlpengine.ModelError, match=rf"config\.json.*{key}.*outside"):
        nlpengine.load(model_dir)


@pytest.mark.parametrize("key", ["encoder_layers", "decoder_layers"])
def test_a_layer_count_past_the_checkpoint_names_the_missing_tensor(tmp_path, key):
    """2**31 - 1 layers: the first layer the file does not have is named (the load
    reserved room for all of them first and died of std::bad_alloc)."""
    save_seq2seq(tmp_path, SEQ2SEQ_CONFIGS["bart"])
    config = json.loads((tmp_path / "config.json").read_text())
    layers = config[key]
    config[key] = 2**31 - 1
    (tmp_path / "config.json").write_text(json.dumps(config))
    with pytest.raises(nlpengine.ModelError, match=rf"model\.safetensors.*layers\.{layers}\."):
        nlpengine.load(tmp_path)


def test_marian_with_a_huge_max_position_embeddings_loads_as_a_small_one(tmp_path):
    """Its sinusoidal table is not stored but computed: a config asking for 2**31 - 1
    positions (a 275 GB table) loads and gives the logits it gives with 64."""
    save_seq2seq(tmp_path, SEQ2SEQ_CONFIGS["marian"])
    ids = np.array([[5, 6, 7, 8, 0]], dtype=np.int64)
    decoder = np.array([[SEQ2SEQ_VOCAB - 1, 9, 10]], dtype=np.int64)
    expected = nlpengine.load(tmp_path).forward(ids, None, decoder)
    config = json.loads((tmp_path / "config.json").read_text())
    config["max_position_embeddings"] = 2**31 - 1
    (tmp_path / "config.json").write_text(json.dumps(config))
    np.testing.assert_array_equal(nlpengine.load(tmp_path).forward(ids, None, decoder), expected)


@pytest.mark.parametrize(
    "buckets, max_distance, key",
    [
        # T5's log-spaced buckets start at half the decoder's buckets: a smaller maximum
        # distance divides by log(1) (transformers fails with an IndexError there).
        (32, 16, "max_distance"),
        (16, 3, "max_distance"),
        (3, 20, "num_buckets"),
    ],
)
def test_t5_relative_buckets_the_formula_cannot_place_are_a_config_error(
    tmp_path, buckets, max_distance, key
):
    config = dict(
        SEQ2SEQ_CONFIGS["t5"],
        relative_attention_num_buckets=buckets,
        relative_attention_max_distance=max_distance,
    )
    save_seq2seq(tmp_path, config)
    with pytest.raises(nlpengine.ModelError, match=rf"config\.json.*relative_attention_{key}"):
        nlpengine.load(tmp_path)


def test_generation_defaults_it_does_not_apply_are_a_warning(model_dir):
    """A directory whose generation defaults use a transformers option nlpengine does not
    apply loads, with a warning that names it; neutral values of such options do not warn."""
    import warnings

    path = model_dir / "generation_config.json"
    path.write_text(json.dumps({"num_beam_groups": 1, "diversity_penalty": 0.0, "num_beams": 2}))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        nlpengine.load(model_dir)
    path.write_text(json.dumps({"encoder_no_repeat_ngram_size": 3, "num_beams": 2}))
    with pytest.warns(UserWarning, match=r"encoder_no_repeat_ngram_size=3.*does not apply"):
        model = nlpengine.load(model_dir)
    assert model.generation_config["num_beams"] == 2


@pytest.fixture(scope="module")
def model(good_dir):
    return nlpengine.load(good_dir, threads=1)


IDS = np.array([[5, 6, 7, 8], [9, 10, 11, 0]], dtype=np.int64)


@pytest.mark.parametrize(
    "options, pattern",
    [
        ({"num_beams": 0}, "num_beams"),
        ({"num_beams": 2, "num_return_sequences": 3}, "num_return_sequences"),
        ({"num_return_sequences": 2}, "num_return_sequences"),
        ({"top_p": 1.5, "do_sample": True}, "top_p"),
        ({"temperature": 0.0, "do_sample": True}, "temperature"),
        ({"eos_token_id": SEQ2SEQ_VOCAB + 3}, "eos_token_id"),
        ({"decoder_start_token_id": -2}, "decoder_start_token_id"),
        ({"max_new_tokens": -5}, "max_new_tokens"),
        ({"early_stopping": "sometimes"}, "early_stopping"),
        ({"beam_width": 3}, "beam_width"),
        ({"bad_words_ids": [[5], []]}, "bad_words_ids"),
        ({"bad_words_ids": [5, 6]}, "bad_words_ids"),
        ({"bad_words_ids": [[5, SEQ2SEQ_VOCAB]]}, "bad_words_ids"),
        ({"suppress_tokens": [-1]}, "suppress_tokens"),
        ({"begin_suppress_tokens": [SEQ2SEQ_VOCAB]}, "begin_suppress_tokens"),
        ({"renormalize_logits": "yes"}, "renormalize_logits"),
    ],
)
def test_bad_generation_options(model, options, pattern):
    with pytest.raises(nlpengine.InvalidInputError, match=pattern):
        model.generate(IDS, **options)


def test_bad_inputs(model):
    with pytest.raises(nlpengine.InvalidInputError, match="input_ids"):
        model.generate(np.array([[5, SEQ2SEQ_VOCAB + 10]]), max_new_tokens=3)
    with pytest.raises(nlpengine.InvalidInputError, match="input_ids"):
        model.generate(np.array([5, 6]), max_new_tokens=3)
    with pytest.raises(nlpengine.InvalidInputError, match="attention_mask"):
        model.generate(IDS, np.ones((2, 3)), max_new_tokens=3)
    with pytest.raises(nlpengine.InvalidInputError, match="decoder_input_ids"):
        model.forward(IDS, None, np.array([[0, SEQ2SEQ_VOCAB]]))


def test_positions_limit_is_an_error_not_a_crash(tmp_path):
    # BART's learned positions bound both the source and the generated length.
    save_seq2seq(tmp_path, SEQ2SEQ_CONFIGS["bart"])
    model = nlpengine.load(tmp_path, threads=1)
    limit = model.config["max_source_length"]
    assert limit == 64
    too_long = np.full((1, limit + 1), 5, dtype=np.int64)
    with pytest.raises(nlpengine.InvalidInputError, match="input_ids.*position"):
        model.generate(too_long, max_new_tokens=2)
    with pytest.raises(nlpengine.InvalidInputError, match="max_length"):
        model.generate(IDS, max_new_tokens=limit + 5)


@pytest.mark.parametrize("max_new_tokens", [10**9, 2**62, 2**63 - 1])
def test_a_length_no_memory_holds_is_an_error_naming_it(tmp_path, max_new_tokens):
    """T5 has no position limit, so only memory bounds max_new_tokens: the key/value cache
    holds every step of every row. Asking for more than the machine has is an error naming
    the option (it was "Tensor: out of memory allocating 128000000128 bytes", or
    "vector::_M_default_append" where the size overflowed)."""
    save_seq2seq(tmp_path, SEQ2SEQ_CONFIGS["t5"])
    model = nlpengine.load(tmp_path, threads=1)
    with pytest.raises(nlpengine.InvalidInputError, match=r"max_new_tokens.*key/value cache"):
        model.generate(IDS, max_new_tokens=max_new_tokens)
    assert model.generate(IDS, max_new_tokens=3, min_new_tokens=3).sequences.shape == (2, 4)


def test_empty_and_fully_masked_sources(model):
    out = model.generate(IDS, np.array([[1, 1, 1, 1], [0, 0, 0, 0]]), max_new_tokens=4)
    assert out.sequences.shape[0] == 2
    empty = model.generate(np.zeros((0, 4), dtype=np.int64), max_new_tokens=4)
    assert empty.sequences.shape[0] == 0
    # The model still works after the bad calls above.
    assert model.generate(IDS, max_new_tokens=3, min_new_tokens=3).sequences.shape == (2, 4)
