"""Bad model files and bad encode inputs raise clean exceptions, never crash.

Every corrupt model is made from a copy of a valid tiny BERT directory.  The
risky cases (anything that could make a careless loader read out of bounds or
allocate absurd amounts) run in a child interpreter, so a segfault or abort
shows up as a failed test instead of killing the test session; the child
reports the exception it got, and the test checks it exited normally.
"""

from __future__ import annotations

import json
import struct
import subprocess
import sys
import textwrap

import nlpengine
import numpy as np
import pytest
from conftest import (
    DTYPE_SIZES,
    assert_close_unmasked,
    copy_model_dir,
    make_batch,
    read_safetensors_raw,
    rebuild_safetensors,
    reference_outputs,
    save_tiny_model,
    tensor_array,
    tensor_entry,
    tensors_from_safetensors,
    write_safetensors_raw,
)

ST = "model.safetensors"
CONFIG = "config.json"
QUERY = "encoder.layer.0.attention.self.query.weight"
WORD_EMB = "embeddings.word_embeddings.weight"
INTERMEDIATE_W = "encoder.layer.0.intermediate.dense.weight"

# ---------------------------------------------------------------------------
# Running nlpengine in a child process
# ---------------------------------------------------------------------------

_CHILD = textwrap.dedent(
    r"""
    import json, resource, sys
    # A loader that trusts a corrupt size field must fail with an error, not
    # swallow the machine's memory.
    resource.setrlimit(resource.RLIMIT_AS, (8 << 30, 8 << 30))
    import numpy as np
    import nlpengine

    def run(model_dir, inputs):
        stage = "load"
        try:
            model = nlpengine.load(model_dir)
            if inputs:
                stage = "encode"
                with np.load(inputs) as npz:
                    arrays = {k: npz[k] for k in npz.files}
                model.encode(arrays.pop("input_ids"), **arrays)
        except BaseException as exc:
            return {"stage": stage, "raised": type(exc).__name__,
                    "model_error": isinstance(exc, nlpengine.ModelError),
                    "value_error": isinstance(exc, ValueError), "message": str(exc)}
        return {"stage": stage, "raised": None}

    result = run(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else None)
    sys.stdout.write("\nRESULT " + json.dumps(result) + "\n")
    """
)


def run_in_child(model_dir, inputs_npz=None) -> dict:
    """Run ``nlpengine.load`` (and ``encode`` on saved inputs) in a child interpreter.

    Asserts the child exited normally (not killed by a signal, no abort, no
    hang) and returns what it reported about the exception.
    """
    args = [sys.executable, "-c", _CHILD, str(model_dir)]
    if inputs_npz is not None:
        args.append(str(inputs_npz))
    try:
        proc = subprocess.run(args, capture_output=True, text=True, timeout=180)
    except subprocess.TimeoutExpired as exc:  # pragma: no cover - failure path
        pytest.fail(f"nlpengine hung on {model_dir}: {exc}")
    assert proc.returncode >= 0, (
        f"child process killed by signal {-proc.returncode}\nstderr:\n{proc.stderr[-3000:]}"
    )
    assert proc.returncode == 0, (
        f"child process exited with status {proc.returncode}\nstderr:\n{proc.stderr[-3000:]}"
    )
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    assert lines, f"child printed no result\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr[-3000:]}"
    return json.loads(lines[-1][len("RESULT ") :])


def model_error_in_child(model_dir) -> str:
    """``nlpengine.load(model_dir)`` in a child must raise ModelError; returns its message."""
    result = run_in_child(model_dir)
    assert result["raised"] is not None, f"loading {model_dir} succeeded; expected ModelError"
    assert result["model_error"], (
        f"expected nlpengine.ModelError, got {result['raised']}: {result['message']}"
    )
    print("ModelError:", result["message"])
    return result["message"]


def model_error_in_process(model_dir) -> str:
    with pytest.raises(nlpengine.ModelError) as info:
        nlpengine.load(model_dir)
    message = str(info.value)
    print("ModelError:", message)
    return message


def assert_names(message: str, *names: str) -> None:
    for name in names:
        assert name in message, f"error message should name {name!r}: {message!r}"


def assert_names_one_of(message: str, names) -> None:
    names = list(names)
    assert any(n in message for n in names), (
        f"error message should name one of {names}: {message!r}"
    )


# ---------------------------------------------------------------------------
# Fixtures and file surgery
# ---------------------------------------------------------------------------


@pytest.fixture
def model_dir(tmp_path, tiny_bert_dir):
    """A private, writable copy of a valid tiny BERT directory."""
    return copy_model_dir(tiny_bert_dir, tmp_path / "model")


def st_path(model_dir):
    return model_dir / ST


def edit_header(model_dir, edit) -> None:
    """Apply ``edit(header_dict)`` to the safetensors header, keeping the data area."""
    header, data = read_safetensors_raw(st_path(model_dir))
    edit(header)
    write_safetensors_raw(st_path(model_dir), header, data)


def edit_tensors(model_dir, edit) -> None:
    """Apply ``edit(tensors)`` to ``{name: (dtype, shape, bytes)}``; rewrite a consistent file."""
    tensors, metadata = tensors_from_safetensors(st_path(model_dir))
    edit(tensors)
    rebuild_safetensors(st_path(model_dir), tensors, metadata)


def edit_config(model_dir, edit) -> None:
    path = model_dir / CONFIG
    config = json.loads(path.read_text())
    edit(config)
    path.write_text(json.dumps(config, indent=2))


def header_size(model_dir) -> int:
    return struct.unpack("<Q", st_path(model_dir).read_bytes()[:8])[0]


def truncate(model_dir, size: int) -> None:
    path = st_path(model_dir)
    path.write_bytes(path.read_bytes()[:size])


def test_valid_copy_loads_and_rewrite_is_lossless(model_dir):
    """Baseline for every case below: the unmodified copy loads, and rewriting
    it through the byte-level helpers yields an equivalent, loadable file."""
    from safetensors.numpy import load_file

    ids = np.array([[5, 6, 7, 119]])
    original = nlpengine.load(model_dir).encode(ids).last_hidden_state
    before, _ = tensors_from_safetensors(st_path(model_dir))
    edit_tensors(model_dir, lambda tensors: None)
    after, _ = tensors_from_safetensors(st_path(model_dir))
    assert after == before
    assert sorted(load_file(st_path(model_dir))) == sorted(before)
    rewritten = nlpengine.load(model_dir).encode(ids).last_hidden_state
    assert original.shape == (1, 4, 40)
    assert np.array_equal(rewritten, original)


# ---------------------------------------------------------------------------
# Corrupt safetensors files (child process)
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("where", ["inside-last-tensor", "middle-of-data"])
def test_truncated_in_data_area(model_dir, where):
    header, data = read_safetensors_raw(st_path(model_dir))
    header.pop("__metadata__", None)
    start = 8 + header_size(model_dir)
    if where == "inside-last-tensor":
        last = max(header, key=lambda k: header[k]["data_offsets"][1])
        begin, end = header[last]["data_offsets"]
        cut = begin + (end - begin) // 2
    else:
        cut = len(data) // 2
    affected = [k for k, v in header.items() if v["data_offsets"][1] > cut]
    assert affected
    truncate(model_dir, start + cut)
    message = model_error_in_child(model_dir)
    assert_names(message, ST)
    assert_names_one_of(message, affected)


@pytest.mark.parametrize("size", [0, 3, 7], ids=["empty", "3-bytes", "7-bytes"])
def test_truncated_inside_length_prefix(model_dir, size):
    truncate(model_dir, size)
    assert_names(model_error_in_child(model_dir), ST)


@pytest.mark.parametrize("fraction", [0.0, 0.5, 0.99])
def test_truncated_inside_json_header(model_dir, fraction):
    n = header_size(model_dir)
    truncate(model_dir, 8 + max(1, int(n * fraction)))
    assert_names(model_error_in_child(model_dir), ST)


@pytest.mark.parametrize(
    "header_bytes",
    [
        b"this is not json at all!",
        b'{"embeddings.word_embeddings.weight": {"dtype": "F32",',
        b"\xff\xfe\xfd\xfc invalid utf-8 \x80\x81",
        b"[1, 2, 3]",
        b'"just a string"',
        b"null",
    ],
    ids=["text", "unterminated-object", "invalid-utf8", "json-array", "json-string", "json-null"],
)
def test_header_not_a_json_object(model_dir, header_bytes):
    _, data = read_safetensors_raw(st_path(model_dir))
    st_path(model_dir).write_bytes(struct.pack("<Q", len(header_bytes)) + header_bytes + data)
    assert_names(model_error_in_child(model_dir), ST)


@pytest.mark.parametrize(
    "prefix",
    ["file-size-plus-1000", "2**32", "2**63", "2**64-1"],
)
def test_header_length_prefix_larger_than_file(model_dir, prefix):
    blob = st_path(model_dir).read_bytes()
    value = {
        "file-size-plus-1000": len(blob) + 1000,
        "2**32": 2**32,
        "2**63": 2**63,
        "2**64-1": 2**64 - 1,
    }[prefix]
    st_path(model_dir).write_bytes(struct.pack("<Q", value) + blob[8:])
    assert_names(model_error_in_child(model_dir), ST)


@pytest.mark.parametrize(
    "tensor, how",
    [
        (WORD_EMB, "shifted-past-end"),
        (QUERY, "shifted-past-end"),
        ("pooler.dense.bias", "end-past-end"),
        (QUERY, "huge-offsets"),
        ("embeddings.LayerNorm.weight", "wraparound"),
    ],
)
def test_data_offsets_outside_file(model_dir, tensor, how):
    _, data = read_safetensors_raw(st_path(model_dir))
    data_len = len(data)

    def edit(header):
        begin, end = header[tensor]["data_offsets"]
        size = end - begin
        if how == "shifted-past-end":  # consistent size, wholly beyond the data area
            header[tensor]["data_offsets"] = [data_len + 64, data_len + 64 + size]
        elif how == "end-past-end":
            header[tensor]["data_offsets"] = [begin, data_len + size]
        elif how == "huge-offsets":
            header[tensor]["data_offsets"] = [2**63, 2**63 + size]
        else:  # begin near 2**64 so that begin + size wraps around to a small number
            header[tensor]["data_offsets"] = [2**64 - 4, size - 4]

    edit_header(model_dir, edit)
    assert_names(model_error_in_child(model_dir), ST, tensor)


@pytest.mark.parametrize("how", ["too-small", "too-large", "reversed", "empty"])
def test_data_offsets_disagree_with_dtype_and_shape(model_dir, how):
    def edit(header):
        begin, end = header[QUERY]["data_offsets"]
        header[QUERY]["data_offsets"] = {
            "too-small": [begin, end - 4],
            "too-large": [begin, end + 4],
            "reversed": [end, begin],
            "empty": [begin, begin],
        }[how]

    edit_header(model_dir, edit)
    assert_names(model_error_in_child(model_dir), ST, QUERY)


@pytest.mark.parametrize(
    "how", ["overlaps-the-next", "moved-onto-another", "gap", "trailing-bytes"]
)
def test_data_offsets_that_do_not_tile_the_data_area(model_dir, how):
    """As the safetensors library requires, the tensors' byte ranges cover the data area
    end to end, without overlaps or gaps: a header whose ranges are each in bounds and of
    the right size, but shared or shifted, is corrupt (it loaded with wrong weights)."""
    path = st_path(model_dir)
    header, data = read_safetensors_raw(path)
    names = [n for n in header if n != "__metadata__"]
    names.sort(key=lambda n: header[n]["data_offsets"])
    if how == "trailing-bytes":
        write_safetensors_raw(path, header, data + b"\0" * 16)
        assert_names(model_error_in_child(model_dir), ST, "16 bytes")
        return
    position = names.index(QUERY)
    begin, end = header[QUERY]["data_offsets"]
    if how == "overlaps-the-next":  # shifted by 4 bytes: the next tensor's first float
        header[QUERY]["data_offsets"] = [begin + 4, end + 4]
    elif how == "moved-onto-another":  # the bytes of the key weight (same shape)
        header[QUERY]["data_offsets"] = list(header[QUERY.replace("query", "key")]["data_offsets"])
    else:  # the tensor after it moved 8 bytes on, into the data area's last bytes
        after = names[position + 1]
        a_begin, a_end = header[after]["data_offsets"]
        data += b"\0" * 8
        header[after]["data_offsets"] = [a_begin + 8, a_end + 8]
        for other in names[position + 2 :]:
            o_begin, o_end = header[other]["data_offsets"]
            header[other]["data_offsets"] = [o_begin + 8, o_end + 8]
    write_safetensors_raw(path, header, data)
    message = model_error_in_child(model_dir)
    assert_names(message, ST)
    key = QUERY.replace("query", "key")
    assert_names_one_of(message, [QUERY, key, *names[position - 1 : position + 2]])


@pytest.mark.parametrize(
    "entry",
    [
        {"shape": [40, 40], "data_offsets": [0, 6400]},
        {"dtype": "F32", "data_offsets": [0, 6400]},
        {"dtype": "F32", "shape": [40, 40]},
        {"dtype": "F99", "shape": [40, 40], "data_offsets": [0, 6400]},
        {"dtype": "F32", "shape": [-40, -40], "data_offsets": [0, 6400]},
        {"dtype": "F32", "shape": "40x40", "data_offsets": [0, 6400]},
        {"dtype": "F32", "shape": [40, 40], "data_offsets": [0]},
        {"dtype": "F32", "shape": [2**40, 2**40], "data_offsets": [0, 6400]},
        "not an object",
    ],
    ids=[
        "no-dtype",
        "no-shape",
        "no-offsets",
        "unknown-dtype",
        "negative-shape",
        "shape-string",
        "one-offset",
        "overflowing-shape",
        "entry-not-object",
    ],
)
def test_malformed_header_entry(model_dir, entry):
    def edit(header):
        header[QUERY] = entry

    edit_header(model_dir, edit)
    assert_names(model_error_in_child(model_dir), ST, QUERY)


# ---------------------------------------------------------------------------
# Tensors that are well-formed but wrong for the model
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "tensor, dtype",
    [
        (QUERY, "I32"),
        (WORD_EMB, "I64"),
        ("embeddings.LayerNorm.weight", "U8"),
        ("encoder.layer.1.output.dense.bias", "BOOL"),
    ],
)
def test_tensor_dtype_disagrees_with_model(model_dir, tensor, dtype):
    def edit(tensors):
        tensors[tensor] = tensor_entry(tensor_array(tensors[tensor]) * 10, dtype)
        assert len(tensors[tensor][2]) == np.prod(tensors[tensor][1]) * DTYPE_SIZES[dtype]

    edit_tensors(model_dir, edit)
    assert_names(model_error_in_child(model_dir), ST, tensor)


@pytest.mark.parametrize(
    "tensor, new_shape",
    [
        (INTERMEDIATE_W, "transposed"),  # (72, 40) stored as (40, 72): same byte count
        (QUERY, (40, 32)),  # hidden size wrong on one side
        (QUERY, (1600,)),  # right element count, wrong rank
        (WORD_EMB, (120, 48)),  # hidden size 48 instead of 40
        (WORD_EMB, (100, 40)),  # vocab 100 instead of config's 120
        ("embeddings.position_embeddings.weight", (32, 40)),  # fewer than max_position_embeddings
        ("embeddings.LayerNorm.weight", (41,)),
        ("encoder.layer.1.attention.output.dense.bias", (40, 1)),
    ],
    ids=[
        "intermediate-transposed",
        "query-40x32",
        "query-1d",
        "word-emb-hidden-48",
        "word-emb-vocab-100",
        "positions-32",
        "layernorm-41",
        "bias-2d",
    ],
)
def test_tensor_shape_disagrees_with_config(model_dir, tensor, new_shape):
    def edit(tensors):
        array = tensor_array(tensors[tensor])
        if new_shape == "transposed":
            assert array.shape[0] != array.shape[1]
            changed = array.T
        else:
            flat = np.resize(array.reshape(-1), int(np.prod(new_shape)))
            changed = flat.reshape(new_shape)
        tensors[tensor] = tensor_entry(changed, "F32")

    edit_tensors(model_dir, edit)
    assert_names(model_error_in_child(model_dir), ST, tensor)


@pytest.mark.parametrize(
    "tensor",
    [
        QUERY,
        "embeddings.LayerNorm.bias",
        "encoder.layer.1.output.dense.weight",
        "embeddings.token_type_embeddings.weight",
        WORD_EMB,
    ],
)
def test_missing_tensor(model_dir, tensor):
    edit_tensors(model_dir, lambda tensors: tensors.pop(tensor))
    assert_names(model_error_in_child(model_dir), ST, tensor)


# ---------------------------------------------------------------------------
# Bad config.json and directories (in process)
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("key", ["hidden_size", "num_attention_heads"])
def test_config_missing_required_key(model_dir, key):
    edit_config(model_dir, lambda config: config.pop(key))
    assert_names(model_error_in_process(model_dir), CONFIG, key)


@pytest.mark.parametrize(
    "key, value",
    [
        ("hidden_size", "forty"),
        ("num_hidden_layers", -1),
        ("num_attention_heads", None),
        ("layer_norm_eps", "tiny"),
        # Numbers no int64 holds: 2**64 - 1 must not wrap to -1, nor 1e300 convert to
        # whatever the CPU gives.
        ("num_hidden_layers", 2**64 - 1),
        ("intermediate_size", 1e300),
        ("hidden_size", 2**63),
    ],
)
def test_config_key_with_wrong_value(model_dir, key, value):
    edit_config(model_dir, lambda config: config.__setitem__(key, value))
    assert_names(model_error_in_process(model_dir), CONFIG, key)


def test_a_layer_count_past_the_checkpoint_names_the_missing_tensor(model_dir):
    """2**31 - 1 layers: the first layer the file does not have is named (the load
    reserved room for all of them first and died of std::bad_alloc)."""
    edit_config(model_dir, lambda config: config.__setitem__("num_hidden_layers", 2**31 - 1))
    assert_names(model_error_in_process(model_dir), ST, "encoder.layer.2.")


@pytest.mark.parametrize(
    "id2label",
    [
        1e300,
        ["O", "B-X", "I-X"],
        {"0": "O", "1": "B-X", "two": "I-X"},
        {"0": "O", "1": "B-X", "5": "I-X"},
        {"0": "O", "1": "B-X", "2": 7},
        {"0": "O", "1": "B-X"},
    ],
    ids=["number", "list", "key-not-a-number", "key-out-of-range", "name-not-a-string", "too-few"],
)
def test_a_classifier_s_id2label_that_names_no_labels(tmp_path, id2label):
    """id2label must map each of the classifier's rows, 0 .. num_labels - 1, to a name (as
    transformers reads it: int(key) -> str): anything else is the config's error at load
    (a number or a list reached the pipelines as an AttributeError; -0.0 or {} silently
    gave LABEL_i names)."""
    model_dir, _ = save_tiny_model(tmp_path, "bert", head="token-classification")
    edit_config(model_dir, lambda config: config.__setitem__("id2label", id2label))
    assert_names(model_error_in_process(model_dir), CONFIG, "id2label")


def test_config_hidden_size_not_divisible_by_heads(model_dir):
    edit_config(model_dir, lambda config: config.__setitem__("num_attention_heads", 3))
    message = model_error_in_process(model_dir)
    assert_names(message, CONFIG)
    assert_names_one_of(message, ["num_attention_heads", "hidden_size"])


@pytest.mark.parametrize(
    "text",
    ['{"model_type": "bert", "hidden_size": 40,', "", "not json", "[1, 2]"],
    ids=["unterminated", "empty", "text", "array"],
)
def test_config_not_valid_json(model_dir, text):
    (model_dir / CONFIG).write_text(text)
    assert_names(model_error_in_process(model_dir), CONFIG)


@pytest.mark.parametrize("model_type", ["frobnicator", "gpt2", ""])
def test_unknown_model_type(model_dir, model_type):
    edit_config(model_dir, lambda config: config.__setitem__("model_type", model_type))
    message = model_error_in_process(model_dir)
    assert_names(message, CONFIG)
    assert_names_one_of(message, ["model_type", model_type or "model_type"])


def test_missing_model_type(model_dir):
    def edit(config):
        config.pop("model_type")
        config.pop("architectures", None)

    edit_config(model_dir, edit)
    assert_names(model_error_in_process(model_dir), CONFIG, "model_type")


def test_directory_does_not_exist(tmp_path):
    missing = tmp_path / "no-such-model-dir"
    message = model_error_in_process(missing)
    assert_names(message, "no-such-model-dir")
    message = model_error_in_process(str(missing))
    assert_names(message, "no-such-model-dir")


def test_directory_without_safetensors(model_dir):
    st_path(model_dir).unlink()
    assert_names(model_error_in_process(model_dir), ST)


def test_directory_without_config(model_dir):
    (model_dir / CONFIG).unlink()
    assert_names(model_error_in_process(model_dir), CONFIG)


def test_empty_directory(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    message = model_error_in_process(empty)
    assert_names_one_of(message, [CONFIG, ST])


# ---------------------------------------------------------------------------
# Encode-time input errors
# ---------------------------------------------------------------------------

ENCODE_ERRORS = (ValueError, nlpengine.ModelError)


def _ids(batch=2, seq=5, value=5):
    return np.full((batch, seq), value, dtype=np.int64)


# Built lazily per test from the tiny BERT config: vocab 120, max positions 64,
# type_vocab_size 2.
BAD_ENCODE_INPUTS = {
    "id-equals-vocab-size": lambda: dict(input_ids=np.array([[5, 120, 6]], dtype=np.int64)),
    "id-huge": lambda: dict(input_ids=np.array([[5, 2**31 - 1, 6]], dtype=np.int64)),
    "id-above-int32": lambda: dict(input_ids=np.array([[5, 2**40, 6]], dtype=np.int64)),
    "id-negative": lambda: dict(input_ids=np.array([[5, -1, 6]], dtype=np.int64)),
    "id-negative-int32": lambda: dict(input_ids=np.array([[5, -7, 6]], dtype=np.int32)),
    "seq-longer-than-max-positions": lambda: dict(input_ids=_ids(1, 65)),
    "seq-much-longer": lambda: dict(input_ids=_ids(1, 1000)),
    "token-type-2": lambda: dict(input_ids=_ids(), token_type_ids=np.full((2, 5), 2)),
    "token-type-negative": lambda: dict(input_ids=_ids(), token_type_ids=np.full((2, 5), -1)),
    "mask-seq-mismatch": lambda: dict(input_ids=_ids(), attention_mask=np.ones((2, 4), np.int64)),
    "mask-batch-mismatch": lambda: dict(input_ids=_ids(), attention_mask=np.ones((3, 5), np.int64)),
    "types-shape-mismatch": lambda: dict(
        input_ids=_ids(), token_type_ids=np.zeros((2, 6), np.int64)
    ),
    "ids-1d": lambda: dict(input_ids=np.array([5, 6, 7], dtype=np.int64)),
    "ids-3d": lambda: dict(input_ids=np.full((1, 2, 3), 5, dtype=np.int64)),
    "mask-1d": lambda: dict(input_ids=_ids(), attention_mask=np.ones(5, np.int64)),
}


@pytest.fixture(scope="module")
def tiny_bert(tiny_bert_dir):
    return nlpengine.load(tiny_bert_dir)


@pytest.mark.parametrize("case", list(BAD_ENCODE_INPUTS))
def test_bad_encode_input_raises(tmp_path, tiny_bert_dir, tiny_bert, case):
    kwargs = BAD_ENCODE_INPUTS[case]()
    # First in a child, so an out-of-bounds read cannot take the test session down ...
    npz = tmp_path / "inputs.npz"
    np.savez(npz, **kwargs)
    result = run_in_child(tiny_bert_dir, npz)
    assert result["stage"] == "encode"
    assert result["raised"] is not None, f"encode accepted bad input ({case})"
    assert result["value_error"] or result["model_error"], (
        f"expected ValueError or ModelError, got {result['raised']}: {result['message']}"
    )
    assert result["message"].strip(), "the exception needs a message"
    print(f"{case}: {result['raised']}: {result['message']}")
    # ... then in process, with the pytest idiom.
    input_ids = kwargs.pop("input_ids")
    with pytest.raises(ENCODE_ERRORS):
        tiny_bert.encode(input_ids, **kwargs)


def test_model_still_works_after_bad_inputs(tiny_bert_dir, tiny_bert):
    from transformers import AutoModel

    reference = AutoModel.from_pretrained(tiny_bert_dir).eval()
    ids, mask, types = make_batch(reference.config, (4, 9), seed=11)
    before = tiny_bert.encode(ids, attention_mask=mask, token_type_ids=types).last_hidden_state
    for make in BAD_ENCODE_INPUTS.values():
        kwargs = make()
        with pytest.raises(ENCODE_ERRORS):
            tiny_bert.encode(kwargs.pop("input_ids"), **kwargs)
    after = tiny_bert.encode(ids, attention_mask=mask, token_type_ids=types).last_hidden_state
    expected, _ = reference_outputs(reference, ids, mask, types)
    assert_close_unmasked(after, before, mask, 0.0, "after bad inputs vs before")
    assert_close_unmasked(after, expected, mask, 1e-4, "after bad inputs vs transformers")


@pytest.mark.parametrize("arch, longest_ok", [("bert", 64), ("roberta", 62)])
def test_position_limit_boundary(tmp_path, arch, longest_ok):
    """The longest accepted sequence matches transformers; one token more raises.

    RoBERTa positions start at pad_token_id + 1 = 2, so with 64 position
    embeddings only 62 tokens fit.
    """
    model_dir, torch_model = save_tiny_model(tmp_path, arch)
    engine = nlpengine.load(model_dir)
    ids, mask, types = make_batch(torch_model.config, (longest_ok, 7), seed=12)
    out = engine.encode(ids, attention_mask=mask, token_type_ids=types)
    expected, _ = reference_outputs(torch_model, ids, mask, types)
    assert_close_unmasked(
        out.last_hidden_state, expected, mask, 1e-4, f"{arch} at {longest_ok} tokens"
    )

    too_long, _, _ = make_batch(torch_model.config, (longest_ok + 1,), seed=13)
    npz = tmp_path / "too_long.npz"
    np.savez(npz, input_ids=too_long)
    result = run_in_child(model_dir, npz)
    assert result["stage"] == "encode" and (result["value_error"] or result["model_error"]), result
    with pytest.raises(ENCODE_ERRORS):
        engine.encode(too_long)


@pytest.mark.parametrize(
    "arch, token_types",
    [("roberta", [[0, 1, 0]]), ("xlm-roberta", [[0, 0, 1]]), ("distilbert", [[0, 1, 1]])],
)
def test_token_types_the_model_does_not_have(tmp_path, arch, token_types):
    """RoBERTa/XLM-R have one token type (type_vocab_size 1); DistilBERT has none."""
    model_dir, _ = save_tiny_model(tmp_path, arch)
    ids = np.array([[5, 6, 7]], dtype=np.int64)
    npz = tmp_path / "inputs.npz"
    np.savez(npz, input_ids=ids, token_type_ids=np.array(token_types, dtype=np.int64))
    result = run_in_child(model_dir, npz)
    assert result["stage"] == "encode" and (result["value_error"] or result["model_error"]), result
    with pytest.raises(ENCODE_ERRORS):
        nlpengine.load(model_dir).encode(ids, token_type_ids=np.array(token_types))
