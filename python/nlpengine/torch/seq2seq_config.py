"""Encoder-decoder hyper-parameters read from a Hugging Face ``config.json``.

Keys and defaults follow transformers' configuration classes of bart, t5 and marian
(``BartConfig``, ``T5Config``, ``MarianConfig``), so a config.json means the same
architecture here as there. Sizes get one set of names for every model type
(``d_model``, ``encoder_layers``, ``encoder_attention_heads``, ``encoder_ffn_dim``, ...;
T5's ``num_layers`` is ``encoder_layers``, ``d_ff`` is the FFN size, ``num_heads`` the
heads of both stacks).

T5: ``feed_forward_proj`` is ``"relu"`` (v1.0) or ``"gated-gelu"`` (v1.1/flan) or any
``[gated-]ACT``; ``"gated-gelu"`` means the tanh GELU (``gelu_new``), as in transformers.
Whether the decoder output is rescaled by ``d_model**-0.5`` before the LM head follows
transformers 5.x: config.json's ``scale_decoder_outputs`` when present, else
``tie_word_embeddings is not False`` (v1.0 checkpoints tie and rescale; v1.1 checkpoints
written by transformers 4.x say ``tie_word_embeddings: false`` and do neither).
"""

from __future__ import annotations

import copy
import os
from dataclasses import dataclass, field
from typing import Any

from nlpengine.torch.config_json import check_positive_ints, read_config_json

__all__ = ["SEQ2SEQ_ARCHITECTURES", "SEQ2SEQ_MODEL_TYPES", "Seq2SeqConfig"]

#: transformers' class for each model type's LM (what config.json's "architectures" says).
SEQ2SEQ_ARCHITECTURES = {
    "bart": "BartForConditionalGeneration",
    "t5": "T5ForConditionalGeneration",
    "marian": "MarianMTModel",
}
SEQ2SEQ_MODEL_TYPES = tuple(SEQ2SEQ_ARCHITECTURES)

_BART_DEFAULTS: dict[str, Any] = {
    "vocab_size": 50265,
    "max_position_embeddings": 1024,
    "encoder_layers": 12,
    "encoder_ffn_dim": 4096,
    "encoder_attention_heads": 16,
    "decoder_layers": 12,
    "decoder_ffn_dim": 4096,
    "decoder_attention_heads": 16,
    "activation_function": "gelu",
    "d_model": 1024,
    "dropout": 0.1,
    "attention_dropout": 0.0,
    "activation_dropout": 0.0,
    "init_std": 0.02,
    "scale_embedding": False,
    "pad_token_id": 1,
    "bos_token_id": 0,
    "eos_token_id": 2,
    "decoder_start_token_id": 2,
    "tie_word_embeddings": True,
}
_MARIAN_DEFAULTS: dict[str, Any] = dict(
    _BART_DEFAULTS,
    vocab_size=58101,
    decoder_vocab_size=None,
    pad_token_id=58100,
    bos_token_id=None,
    eos_token_id=0,
    decoder_start_token_id=58100,
    share_encoder_decoder_embeddings=True,
)
_T5_DEFAULTS: dict[str, Any] = {
    "vocab_size": 32128,
    "d_model": 512,
    "d_kv": 64,
    "d_ff": 2048,
    "num_layers": 6,
    "num_decoder_layers": None,
    "num_heads": 8,
    "relative_attention_num_buckets": 32,
    "relative_attention_max_distance": 128,
    "dropout_rate": 0.1,
    "layer_norm_epsilon": 1e-6,
    "initializer_factor": 1.0,
    "feed_forward_proj": "relu",
    "pad_token_id": 0,
    "eos_token_id": 1,
    "decoder_start_token_id": None,
}
_DEFAULTS = {"bart": _BART_DEFAULTS, "marian": _MARIAN_DEFAULTS, "t5": _T5_DEFAULTS}

#: nn.LayerNorm's default epsilon (BART and Marian do not configure it).
BART_LAYER_NORM_EPS = 1e-5

#: Keys this module writes back from its own fields (the rest of config.json is kept).
_DROP_ON_SAVE = ("_name_or_path", "torch_dtype", "dtype", "transformers_version")


def _first_id(value) -> int | None:
    if isinstance(value, (list, tuple)):
        return int(value[0]) if value else None
    return None if value is None else int(value)


@dataclass
class Seq2SeqConfig:
    """Every hyper-parameter of a bart / t5 / marian encoder-decoder, and config.json as read
    (``raw``, so that saving keeps keys this class does not use)."""

    model_type: str
    vocab_size: int
    d_model: int
    encoder_layers: int
    decoder_layers: int
    encoder_attention_heads: int
    decoder_attention_heads: int
    encoder_ffn_dim: int
    decoder_ffn_dim: int
    activation_function: str
    layer_norm_eps: float
    dropout: float
    attention_dropout: float = 0.0
    activation_dropout: float = 0.0
    pad_token_id: int | None = None
    eos_token_id: int | None = None
    bos_token_id: int | None = None
    decoder_start_token_id: int | None = None
    tie_word_embeddings: bool = True
    init_std: float = 0.02
    # bart / marian
    max_position_embeddings: int | None = None
    scale_embedding: bool = False
    decoder_vocab_size: int | None = None  # marian with separate decoder embeddings
    share_encoder_decoder_embeddings: bool = True
    # t5
    d_kv: int | None = None
    relative_attention_num_buckets: int = 32
    relative_attention_max_distance: int = 128
    is_gated_act: bool = False
    scale_decoder_outputs: bool = False
    initializer_factor: float = 1.0
    raw: dict = field(default_factory=dict, repr=False)

    # -- derived -------------------------------------------------------------------

    @property
    def is_t5(self) -> bool:
        return self.model_type == "t5"

    @property
    def architecture(self) -> str:
        return SEQ2SEQ_ARCHITECTURES[self.model_type]

    @property
    def target_vocab_size(self) -> int:
        """Rows of the LM head (Marian may have a separate decoder vocabulary)."""
        if self.model_type == "marian" and not self.share_encoder_decoder_embeddings:
            return int(self.decoder_vocab_size or self.vocab_size)
        return self.vocab_size

    @property
    def max_source_positions(self) -> int | None:
        """Longest input the encoder takes: max_position_embeddings for learned or
        sinusoidal positions, None for T5 (relative positions have no limit)."""
        return None if self.is_t5 else self.max_position_embeddings

    # -- reading -------------------------------------------------------------------

    @classmethod
    def from_dict(cls, raw: dict) -> Seq2SeqConfig:
        raw = copy.deepcopy(dict(raw))
        model_type = raw.get("model_type")
        if model_type not in _DEFAULTS:
            raise ValueError(
                f"config.json: model_type {model_type!r} is not a supported encoder-decoder "
                f"({', '.join(SEQ2SEQ_MODEL_TYPES)})"
            )
        d = dict(_DEFAULTS[model_type])
        d.update(raw)
        if model_type == "t5":
            projection = str(d["feed_forward_proj"])
            parts = projection.split("-")
            if len(parts) > 2 or (len(parts) == 2 and parts[0] != "gated"):
                raise ValueError(
                    f"config.json: feed_forward_proj {projection!r} must be 'ACT' or 'gated-ACT'"
                )
            activation = "gelu_new" if projection == "gated-gelu" else parts[-1]
            tie = raw.get("tie_word_embeddings")
            scale = raw.get("scale_decoder_outputs")
            if scale is None:
                scale = tie is not False
            layers = int(d["num_layers"])
            values = dict(
                d_model=int(d["d_model"]),
                encoder_layers=layers,
                decoder_layers=int(d["num_decoder_layers"] or layers),
                encoder_attention_heads=int(d["num_heads"]),
                decoder_attention_heads=int(d["num_heads"]),
                encoder_ffn_dim=int(d["d_ff"]),
                decoder_ffn_dim=int(d["d_ff"]),
                activation_function=activation,
                layer_norm_eps=float(d["layer_norm_epsilon"]),
                dropout=float(d["dropout_rate"]),
                attention_dropout=float(d["dropout_rate"]),
                activation_dropout=float(d["dropout_rate"]),
                d_kv=int(d["d_kv"]),
                relative_attention_num_buckets=int(d["relative_attention_num_buckets"]),
                relative_attention_max_distance=int(d["relative_attention_max_distance"]),
                is_gated_act=len(parts) == 2,
                scale_decoder_outputs=bool(scale),
                tie_word_embeddings=tie is not False,
                initializer_factor=float(d["initializer_factor"]),
                decoder_start_token_id=_first_id(d.get("decoder_start_token_id")),
            )
            if values["decoder_start_token_id"] is None:
                # T5 starts decoding with the pad token (transformers' generation config).
                values["decoder_start_token_id"] = _first_id(d.get("pad_token_id"))
        else:
            values = dict(
                d_model=int(d["d_model"]),
                encoder_layers=int(d["encoder_layers"]),
                decoder_layers=int(d["decoder_layers"]),
                encoder_attention_heads=int(d["encoder_attention_heads"]),
                decoder_attention_heads=int(d["decoder_attention_heads"]),
                encoder_ffn_dim=int(d["encoder_ffn_dim"]),
                decoder_ffn_dim=int(d["decoder_ffn_dim"]),
                activation_function=str(d["activation_function"]),
                layer_norm_eps=BART_LAYER_NORM_EPS,
                dropout=float(d["dropout"]),
                attention_dropout=float(d["attention_dropout"]),
                activation_dropout=float(d["activation_dropout"]),
                max_position_embeddings=int(d["max_position_embeddings"]),
                scale_embedding=bool(d["scale_embedding"]),
                tie_word_embeddings=d.get("tie_word_embeddings") is not False,
                init_std=float(d["init_std"]),
                decoder_start_token_id=_first_id(d.get("decoder_start_token_id")),
            )
            if model_type == "marian":
                values["share_encoder_decoder_embeddings"] = bool(
                    d["share_encoder_decoder_embeddings"]
                )
                values["decoder_vocab_size"] = int(d["decoder_vocab_size"] or d["vocab_size"])
        config = cls(
            model_type=model_type,
            vocab_size=int(d["vocab_size"]),
            pad_token_id=_first_id(d.get("pad_token_id")),
            eos_token_id=_first_id(d.get("eos_token_id")),
            bos_token_id=_first_id(d.get("bos_token_id")),
            raw=raw,
            **values,
        )
        config.validate()
        return config

    @classmethod
    def from_file(cls, path: str | os.PathLike) -> Seq2SeqConfig:
        """Read a config.json file or the one in a model directory."""
        path, raw = read_config_json(path)
        try:
            return cls.from_dict(raw)
        except (ValueError, TypeError, KeyError) as exc:
            raise ValueError(f"{path}: {exc}") from None

    def validate(self) -> None:
        check_positive_ints(
            self,
            (
                "vocab_size",
                "d_model",
                "encoder_layers",
                "decoder_layers",
                "encoder_attention_heads",
                "decoder_attention_heads",
                "encoder_ffn_dim",
                "decoder_ffn_dim",
            ),
        )
        if self.is_t5:
            if not self.d_kv or self.d_kv <= 0:
                raise ValueError(f"config.json: d_kv must be a positive integer, got {self.d_kv}")
        else:
            if not self.max_position_embeddings or self.max_position_embeddings <= 0:
                raise ValueError("config.json: max_position_embeddings must be positive")
            for key in ("encoder_attention_heads", "decoder_attention_heads"):
                if self.d_model % getattr(self, key):
                    raise ValueError(
                        f"config.json: d_model {self.d_model} is not a multiple of "
                        f"{key} {getattr(self, key)}"
                    )
        if self.pad_token_id is None:
            raise ValueError("config.json: pad_token_id is needed (labels are padded with it)")
        if self.decoder_start_token_id is None:
            raise ValueError("config.json: decoder_start_token_id is needed")

    # -- writing -------------------------------------------------------------------

    def to_dict(self, *, tied_lm_head: bool = True) -> dict:
        """config.json contents (``tied_lm_head``: whether the LM head is the shared
        embedding, which decides T5's ``tie_word_embeddings``)."""
        out = copy.deepcopy(self.raw)
        for key in _DROP_ON_SAVE:
            out.pop(key, None)
        out["model_type"] = self.model_type
        out["architectures"] = [self.architecture]
        out["vocab_size"] = self.vocab_size
        out["pad_token_id"] = self.pad_token_id
        out["decoder_start_token_id"] = self.decoder_start_token_id
        out["is_encoder_decoder"] = True
        if self.is_t5:
            out["tie_word_embeddings"] = bool(tied_lm_head)
            out["scale_decoder_outputs"] = bool(self.scale_decoder_outputs)
        else:
            out["tie_word_embeddings"] = bool(tied_lm_head)
        return dict(sorted(out.items()))
