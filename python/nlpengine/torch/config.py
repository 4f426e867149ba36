"""Encoder hyper-parameters read from a Hugging Face ``config.json``.

Keys and defaults follow the transformers configuration classes of each model
type, so a config.json means the same architecture here as there.
"""

from __future__ import annotations

import copy
import os
from dataclasses import dataclass, field
from typing import Any

from nlpengine.torch.config_json import check_positive_ints, read_config_json

__all__ = [
    "ARCHITECTURE_PREFIXES",
    "HEADS",
    "SUPPORTED_MODEL_TYPES",
    "EncoderConfig",
    "architecture_name",
    "head_from_architectures",
]

#: Where each model type's encoder lives in a task checkpoint ("bert.encoder...").
ARCHITECTURE_PREFIXES: dict[str, str] = {
    "bert": "bert",
    "roberta": "roberta",
    "xlm-roberta": "roberta",
    "camembert": "roberta",
    "distilbert": "distilbert",
    "electra": "electra",
}
SUPPORTED_MODEL_TYPES = tuple(ARCHITECTURE_PREFIXES)

#: Class-name stems transformers uses ("BertForTokenClassification").
_CLASS_STEMS = {
    "bert": "Bert",
    "roberta": "Roberta",
    "xlm-roberta": "XLMRoberta",
    "camembert": "Camembert",
    "distilbert": "DistilBert",
    "electra": "Electra",
}
_HEAD_SUFFIXES = {
    None: "Model",
    "sequence_classification": "ForSequenceClassification",
    "token_classification": "ForTokenClassification",
    "question_answering": "ForQuestionAnswering",
}
HEADS = (None, "sequence_classification", "token_classification", "question_answering")

_ROBERTA_LIKE = frozenset({"roberta", "xlm-roberta", "camembert"})

# transformers' defaults per model type (configuration_*.py).
_BERT_DEFAULTS: dict[str, Any] = {
    "vocab_size": 30522,
    "hidden_size": 768,
    "num_hidden_layers": 12,
    "num_attention_heads": 12,
    "intermediate_size": 3072,
    "hidden_act": "gelu",
    "hidden_dropout_prob": 0.1,
    "attention_probs_dropout_prob": 0.1,
    "max_position_embeddings": 512,
    "type_vocab_size": 2,
    "initializer_range": 0.02,
    "layer_norm_eps": 1e-12,
    "pad_token_id": 0,
    "classifier_dropout": None,
}
_DEFAULTS: dict[str, dict[str, Any]] = {
    "bert": _BERT_DEFAULTS,
    "roberta": dict(_BERT_DEFAULTS, vocab_size=50265, pad_token_id=1),
    "xlm-roberta": dict(_BERT_DEFAULTS, pad_token_id=1),
    "camembert": dict(_BERT_DEFAULTS, pad_token_id=1),
    "electra": dict(
        _BERT_DEFAULTS,
        embedding_size=128,
        hidden_size=256,
        num_attention_heads=4,
        intermediate_size=1024,
    ),
    "distilbert": {
        "vocab_size": 30522,
        "max_position_embeddings": 512,
        "sinusoidal_pos_embds": False,
        "n_layers": 6,
        "n_heads": 12,
        "dim": 768,
        "hidden_dim": 3072,
        "dropout": 0.1,
        "attention_dropout": 0.1,
        "activation": "gelu",
        "initializer_range": 0.02,
        "qa_dropout": 0.1,
        "seq_classif_dropout": 0.2,
        "pad_token_id": 0,
    },
}

#: DistilBERT's LayerNorm epsilon is hard-coded in transformers.
DISTILBERT_LAYER_NORM_EPS = 1e-12


def architecture_name(model_type: str, head: str | None) -> str:
    """The transformers class name, e.g. ``("bert", "token_classification")`` ->
    ``"BertForTokenClassification"``."""
    return _CLASS_STEMS[model_type] + _HEAD_SUFFIXES[head]


def head_from_architectures(architectures) -> str | None:
    """The head config.json's "architectures" names (the C++ runtime's rule)."""
    for name in architectures or ():
        if not isinstance(name, str):
            continue
        if name.endswith("ForSequenceClassification"):
            return "sequence_classification"
        if name.endswith("ForTokenClassification"):
            return "token_classification"
        if name.endswith("ForQuestionAnswering"):
            return "question_answering"
    return None


def _normalize_head(head: str | None) -> str | None:
    if head in (None, "none", "", "encoder"):
        return None
    h = str(head).replace("-", "_")
    if h not in HEADS:
        raise ValueError(
            f"unknown head {head!r}: expected None, 'sequence_classification', "
            "'token_classification' or 'question_answering'"
        )
    return h


@dataclass
class EncoderConfig:
    """Every hyper-parameter of an encoder (+ task head) and the raw config.json dict.

    Sizes use BERT names for every model type (DistilBERT's ``dim`` is
    ``hidden_size``, ``n_layers`` is ``num_hidden_layers``, ...); ``raw`` keeps
    config.json as read so that saving preserves unknown keys.
    """

    model_type: str
    vocab_size: int
    hidden_size: int
    num_hidden_layers: int
    num_attention_heads: int
    intermediate_size: int
    hidden_act: str
    layer_norm_eps: float
    max_position_embeddings: int
    type_vocab_size: int  # 0: no token type embeddings (DistilBERT)
    pad_token_id: int | None
    embedding_size: int  # == hidden_size except for ELECTRA
    initializer_range: float = 0.02
    hidden_dropout_prob: float = 0.1
    attention_probs_dropout_prob: float = 0.1
    classifier_dropout: float | None = None  # BERT family; None -> hidden_dropout_prob
    seq_classif_dropout: float = 0.2  # DistilBERT sequence head
    sinusoidal_pos_embds: bool = False  # DistilBERT
    num_labels: int | None = None
    id2label: dict[int, str] | None = None
    label2id: dict[str, int] | None = None
    problem_type: str | None = None
    architectures: list[str] | None = None
    raw: dict = field(default_factory=dict, repr=False)

    # -- derived -----------------------------------------------------------

    @property
    def is_distilbert(self) -> bool:
        return self.model_type == "distilbert"

    @property
    def roberta_positions(self) -> bool:
        """Position ids = pad_token_id + cumulative count of non-pad tokens."""
        return self.model_type in _ROBERTA_LIKE

    @property
    def base_model_prefix(self) -> str:
        return ARCHITECTURE_PREFIXES[self.model_type]

    @property
    def head_size(self) -> int:
        return self.hidden_size // self.num_attention_heads

    @property
    def head_dropout_prob(self) -> float:
        """Dropout before the token classifier / in the RoBERTa-style heads."""
        if self.is_distilbert:
            return float(self.raw.get("dropout", self.hidden_dropout_prob))
        if self.classifier_dropout is not None:
            return float(self.classifier_dropout)
        return self.hidden_dropout_prob

    def head_from_architectures(self) -> str | None:
        return head_from_architectures(self.architectures)

    # -- reading -------------------------------------------------------------

    @classmethod
    def from_dict(cls, raw: dict) -> EncoderConfig:
        raw = copy.deepcopy(dict(raw))
        model_type = raw.get("model_type")
        if model_type not in _DEFAULTS:
            raise ValueError(
                f"config.json: model_type {model_type!r} is not a supported encoder "
                f"({', '.join(SUPPORTED_MODEL_TYPES)})"
            )
        d = dict(_DEFAULTS[model_type])
        d.update({k: v for k, v in raw.items()})

        if model_type == "distilbert":
            values = dict(
                hidden_size=d["dim"],
                num_hidden_layers=d["n_layers"],
                num_attention_heads=d["n_heads"],
                intermediate_size=d["hidden_dim"],
                hidden_act=d["activation"],
                layer_norm_eps=DISTILBERT_LAYER_NORM_EPS,
                type_vocab_size=0,
                embedding_size=d["dim"],
                hidden_dropout_prob=d["dropout"],
                attention_probs_dropout_prob=d["attention_dropout"],
                classifier_dropout=None,
                seq_classif_dropout=d["seq_classif_dropout"],
                sinusoidal_pos_embds=bool(d["sinusoidal_pos_embds"]),
            )
        else:
            pos_type = d.get("position_embedding_type", "absolute")
            if pos_type not in (None, "absolute"):
                raise ValueError(
                    f"config.json: position_embedding_type {pos_type!r} is not supported "
                    "(only 'absolute')"
                )
            values = dict(
                hidden_size=d["hidden_size"],
                num_hidden_layers=d["num_hidden_layers"],
                num_attention_heads=d["num_attention_heads"],
                intermediate_size=d["intermediate_size"],
                hidden_act=d["hidden_act"],
                layer_norm_eps=float(d["layer_norm_eps"]),
                type_vocab_size=d["type_vocab_size"],
                embedding_size=d.get("embedding_size", d["hidden_size"])
                if model_type == "electra"
                else d["hidden_size"],
                hidden_dropout_prob=d["hidden_dropout_prob"],
                attention_probs_dropout_prob=d["attention_probs_dropout_prob"],
                classifier_dropout=d.get("classifier_dropout"),
            )
        if not isinstance(values["hidden_act"], str):
            raise ValueError(f"config.json: activation {values['hidden_act']!r} must be a name")

        id2label = raw.get("id2label")
        if id2label is not None:
            id2label = {int(k): str(v) for k, v in id2label.items()}
        label2id = raw.get("label2id")
        if label2id is not None:
            label2id = {str(k): int(v) for k, v in label2id.items()}
        num_labels = raw.get("num_labels")
        if id2label:
            num_labels = len(id2label)

        config = cls(
            model_type=model_type,
            vocab_size=int(d["vocab_size"]),
            max_position_embeddings=int(d["max_position_embeddings"]),
            pad_token_id=d.get("pad_token_id"),
            initializer_range=float(d.get("initializer_range") or 0.02),
            num_labels=num_labels,
            id2label=id2label,
            label2id=label2id,
            problem_type=raw.get("problem_type"),
            architectures=raw.get("architectures"),
            raw=raw,
            **values,
        )
        config.validate()
        return config

    @classmethod
    def from_file(cls, path: str | os.PathLike) -> EncoderConfig:
        """Read a config.json file or the one in a model directory."""
        path, raw = read_config_json(path)
        try:
            return cls.from_dict(raw)
        except ValueError as exc:
            raise ValueError(f"{path}: {exc}") from None

    def validate(self) -> None:
        check_positive_ints(
            self,
            (
                "vocab_size",
                "hidden_size",
                "num_hidden_layers",
                "num_attention_heads",
                "intermediate_size",
                "max_position_embeddings",
                "embedding_size",
            ),
        )
        if self.hidden_size % self.num_attention_heads:
            raise ValueError(
                f"config.json: hidden size {self.hidden_size} is not a multiple of the number "
                f"of attention heads {self.num_attention_heads}"
            )
        if self.roberta_positions and self.pad_token_id is None:
            raise ValueError(f"config.json: {self.model_type} needs pad_token_id")

    # -- labels ----------------------------------------------------------------

    def set_labels(self, num_labels: int | None = None, id2label=None) -> None:
        """Set num_labels / id2label / label2id consistently (LABEL_i names by default)."""
        if id2label is not None:
            if isinstance(id2label, (list, tuple)):
                id2label = dict(enumerate(id2label))
            id2label = {int(k): str(v) for k, v in id2label.items()}
            if sorted(id2label) != list(range(len(id2label))):
                raise ValueError(f"id2label keys must be 0..n-1, got {sorted(id2label)}")
            if num_labels is not None and num_labels != len(id2label):
                raise ValueError(
                    f"num_labels={num_labels} disagrees with id2label ({len(id2label)} labels)"
                )
            num_labels = len(id2label)
        elif num_labels is not None:
            if self.id2label is not None and len(self.id2label) == num_labels:
                id2label = dict(self.id2label)
            else:
                id2label = {i: f"LABEL_{i}" for i in range(num_labels)}
        else:
            return
        if num_labels < 1:
            raise ValueError(f"num_labels must be positive, got {num_labels}")
        self.num_labels = num_labels
        self.id2label = id2label
        self.label2id = {name: i for i, name in id2label.items()}

    # -- writing -----------------------------------------------------------------

    def to_dict(self, head: str | None = None) -> dict:
        """config.json contents for a model with ``head``."""
        head = _normalize_head(head)
        out = copy.deepcopy(self.raw)
        for key in ("_name_or_path", "num_labels", "torch_dtype"):
            out.pop(key, None)
        out["model_type"] = self.model_type
        out["architectures"] = [architecture_name(self.model_type, head)]
        out["vocab_size"] = self.vocab_size
        out["max_position_embeddings"] = self.max_position_embeddings
        out["pad_token_id"] = self.pad_token_id
        out["initializer_range"] = self.initializer_range
        if self.is_distilbert:
            out.update(
                dim=self.hidden_size,
                n_layers=self.num_hidden_layers,
                n_heads=self.num_attention_heads,
                hidden_dim=self.intermediate_size,
                activation=self.hidden_act,
                dropout=self.hidden_dropout_prob,
                attention_dropout=self.attention_probs_dropout_prob,
                seq_classif_dropout=self.seq_classif_dropout,
                sinusoidal_pos_embds=self.sinusoidal_pos_embds,
            )
        else:
            out.update(
                hidden_size=self.hidden_size,
                num_hidden_layers=self.num_hidden_layers,
                num_attention_heads=self.num_attention_heads,
                intermediate_size=self.intermediate_size,
                hidden_act=self.hidden_act,
                hidden_dropout_prob=self.hidden_dropout_prob,
                attention_probs_dropout_prob=self.attention_probs_dropout_prob,
                layer_norm_eps=self.layer_norm_eps,
                type_vocab_size=self.type_vocab_size,
                classifier_dropout=self.classifier_dropout,
            )
            if self.model_type == "electra":
                out["embedding_size"] = self.embedding_size
        if self.id2label is not None:
            out["id2label"] = {str(i): name for i, name in sorted(self.id2label.items())}
            out["label2id"] = {name: i for i, name in sorted(self.id2label.items())}
        elif head is not None and self.num_labels is not None:
            out["num_labels"] = self.num_labels
        if self.problem_type is not None:
            out["problem_type"] = self.problem_type
        else:
            out.pop("problem_type", None)
        return dict(sorted(out.items()))
