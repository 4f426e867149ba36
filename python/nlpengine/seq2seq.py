"""The encoder-decoder half of the runtime facade: BART, T5 and Marian models with
greedy search, beam search and sampling (transformers' generate() semantics)."""

from __future__ import annotations

import json
import os
import warnings
from dataclasses import dataclass

import numpy as np

from nlpengine import _core
from nlpengine.runtime_clock import runtime_call

__all__ = ["GENERATION_OPTIONS", "GenerationOutput", "Seq2SeqModel"]

#: Options generate() takes, with transformers' names and meaning.
GENERATION_OPTIONS = (
    "max_length",
    "max_new_tokens",
    "min_length",
    "min_new_tokens",
    "num_beams",
    "length_penalty",
    "early_stopping",
    "no_repeat_ngram_size",
    "repetition_penalty",
    "forced_bos_token_id",
    "forced_eos_token_id",
    "decoder_start_token_id",
    "eos_token_id",
    "pad_token_id",
    "do_sample",
    "temperature",
    "top_k",
    "top_p",
    "seed",
    "num_return_sequences",
    "bad_words_ids",
    "suppress_tokens",
    "begin_suppress_tokens",
    "renormalize_logits",
)


#: transformers generation options that nlpengine does not apply, with the values that
#: leave transformers' search as nlpengine's is (a directory setting another value gets a
#: warning at load: its outputs can differ from transformers').
UNAPPLIED_GENERATION_OPTIONS = {
    "encoder_no_repeat_ngram_size": (None, 0),
    "exponential_decay_length_penalty": (None,),
    "sequence_bias": (None,),
    "remove_invalid_values": (None, False),
    "num_beam_groups": (None, 1),
    "diversity_penalty": (None, 0, 0.0),
    "constraints": (None,),
    "force_words_ids": (None,),
    "penalty_alpha": (None,),
    "guidance_scale": (None, 1, 1.0),
    "typical_p": (None, 1, 1.0),
    "epsilon_cutoff": (None, 0, 0.0),
    "eta_cutoff": (None, 0, 0.0),
    "min_p": (None,),
    "top_h": (None,),
    "max_time": (None,),
    "stop_strings": (None,),
    "watermarking_config": (None,),
    "dola_layers": (None,),
}


def _unapplied_options(directory: str, hf_config: dict) -> dict:
    """The options of the directory's generation defaults (generation_config.json, else
    config.json, as transformers reads them) that nlpengine would not apply."""
    path = os.path.join(directory, "generation_config.json")
    if os.path.isfile(path):
        with open(path, encoding="utf-8") as f:
            defaults = json.load(f)
    else:
        defaults = hf_config
    return {
        key: defaults[key]
        for key, neutral in UNAPPLIED_GENERATION_OPTIONS.items()
        if key in defaults and defaults[key] not in neutral and defaults[key] != []
    }


@dataclass(frozen=True)
class GenerationOutput:
    """``sequences``: int64 (batch * num_return_sequences, length), each row starting
    with the decoder start token and padded after it ends, as transformers returns
    them; the rows of one input are adjacent, best first for beam search.
    ``scores``: float32 (batch * num_return_sequences,): the length-penalised beam
    score for beam search, else the sum of the chosen tokens' log-probabilities."""

    sequences: np.ndarray
    scores: np.ndarray


def _ids(name: str, array, reference_shape=None) -> np.ndarray:
    a = np.asarray(array)
    if not (a.dtype == np.bool_ or np.issubdtype(a.dtype, np.integer)):
        raise _core.InvalidInputError(f"{name}: expected an integer array, got dtype {a.dtype}")
    if a.ndim != 2:
        raise _core.InvalidInputError(
            f"{name}: expected shape (batch, seq), got an array of shape {a.shape}"
        )
    if reference_shape is not None and a.shape != reference_shape:
        raise _core.InvalidInputError(
            f"{name}: shape {a.shape} differs from input_ids shape {reference_shape}"
        )
    return np.ascontiguousarray(a, dtype=np.int64)


def _json_value(name: str, value):
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, (list, tuple)):
        return [_json_value(name, v) for v in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise _core.InvalidInputError(f"generation option '{name}': unsupported value {value!r}")


class Seq2SeqModel:
    """An encoder-decoder (bart, t5, marian) loaded from a Hugging Face model directory.
    Immutable and safe to share between threads; generate() releases the GIL."""

    def __init__(self, native: _core.Seq2SeqModel):
        self._native = native
        with open(os.path.join(native.directory, "config.json"), encoding="utf-8") as f:
            self._hf_config = json.load(f)
        unapplied = _unapplied_options(native.directory, self._hf_config)
        if unapplied:
            listed = ", ".join(f"{k}={v!r}" for k, v in unapplied.items())
            warnings.warn(
                f"{native.directory}: the generation defaults set {listed}, which nlpengine "
                "does not apply; generate() can give other tokens than transformers' there",
                stacklevel=3,
            )

    @property
    def hf_config(self) -> dict:
        """config.json as a dict."""
        return self._hf_config

    @property
    def config(self) -> dict:
        """Model type and sizes as read from config.json."""
        return dict(self._native.info)

    @property
    def generation_config(self) -> dict:
        """The generation defaults: generation_config.json (else config.json's keys)."""
        return dict(self._native.generation_defaults)

    @property
    def head(self) -> str:
        return "seq2seq_lm"

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
        return self._native.directory

    @property
    def adapter_directory(self) -> None:
        return None

    @property
    def tokenizer_directory(self) -> str:
        return self.directory

    def generate(self, input_ids, attention_mask=None, **options) -> GenerationOutput:
        """Generate from int arrays of shape (batch, seq). Options (transformers' names):
        max_new_tokens, max_length, min_new_tokens, min_length, num_beams,
        length_penalty, early_stopping (True, False or "never"), no_repeat_ngram_size,
        repetition_penalty, forced_bos_token_id, forced_eos_token_id,
        decoder_start_token_id, eos_token_id, pad_token_id, do_sample, temperature,
        top_k, top_p, seed, num_return_sequences, bad_words_ids, suppress_tokens,
        begin_suppress_tokens, renormalize_logits. Unset options take the model's
        generation_config.json values. As in transformers, an option given as None is
        switched off where it has an off state (``forced_eos_token_id=None``: no forced
        end token; ``max_new_tokens=None``: max_length limits; a penalty, n-gram block or
        sampling filter not applied); num_beams, length_penalty, do_sample, seed,
        num_return_sequences and decoder_start_token_id given as None keep the model's
        value."""
        unknown = sorted(set(options) - set(GENERATION_OPTIONS))
        if unknown:
            raise _core.InvalidInputError(
                f"unknown generation option(s): {', '.join(unknown)} "
                f"(known: {', '.join(GENERATION_OPTIONS)})"
            )
        ids = _ids("input_ids", input_ids)
        mask = None if attention_mask is None else _ids("attention_mask", attention_mask, ids.shape)
        payload = {k: _json_value(k, v) for k, v in options.items()}
        with runtime_call():
            sequences, scores = self._native.generate(ids, mask, json.dumps(payload))
        return GenerationOutput(sequences=sequences, scores=scores)

    def forward(self, input_ids, attention_mask, decoder_input_ids) -> np.ndarray:
        """Teacher-forced decoder logits, float32 (batch, decoder_seq, vocab)."""
        ids = _ids("input_ids", input_ids)
        mask = None if attention_mask is None else _ids("attention_mask", attention_mask, ids.shape)
        decoder = _ids("decoder_input_ids", decoder_input_ids)
        with runtime_call():
            return self._native.forward(ids, mask, decoder)

    def __repr__(self) -> str:
        info = self._native.info
        return (
            f"Seq2SeqModel({info['model_type']}, d_model={info['d_model']}, "
            f"layers={info['encoder_layers']}+{info['decoder_layers']}, threads={self.threads}, "
            f"dir={self.directory!r})"
        )
