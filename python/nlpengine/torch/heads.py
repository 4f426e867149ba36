"""Task heads and :class:`EncoderModel`, the encoder with an optional head.

``state_dict()`` keys equal transformers' for the same architecture:

* bare encoder (``head=None``): no prefix (``embeddings.word_embeddings.weight``);
* task models: the encoder under its base-model prefix (``bert.``, ``roberta.`` for
  roberta / xlm-roberta / camembert, ``distilbert.``, ``electra.``) and the head at the
  top level (``classifier.weight``, ``classifier.out_proj.weight``, ``pre_classifier.*``,
  ``qa_outputs.*`` for span question answering).
"""

from __future__ import annotations

import os

import torch
import torch.nn.functional as F
from torch import nn

from nlpengine.torch.config import EncoderConfig, _normalize_head
from nlpengine.torch.encoder import Encoder, get_activation

__all__ = ["ClassificationHead", "EncoderModel", "head_weight_names", "span_loss"]

#: Model types whose transformers base model (AutoModel) carries a pooler.
POOLER_MODEL_TYPES = frozenset({"bert", "roberta", "xlm-roberta", "camembert"})


class ClassificationHead(nn.Module):
    """RoBERTa / ELECTRA sequence head on the first token:
    dropout -> ``dense`` -> activation -> dropout -> ``out_proj``."""

    def __init__(self, hidden_size: int, num_labels: int, activation: str, dropout: float):
        super().__init__()
        self.dense = nn.Linear(hidden_size, hidden_size)
        self.dropout = nn.Dropout(dropout)
        self.out_proj = nn.Linear(hidden_size, num_labels)
        self.act = get_activation(activation)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        x = self.dropout(hidden[:, 0])
        x = self.dropout(self.act(self.dense(x)))
        return self.out_proj(x)


def span_loss(logits: torch.Tensor, positions: torch.Tensor, reduction: str = "mean"):
    """transformers' extractive QA loss: ``logits`` (batch, seq, 2) start/end logits,
    ``positions`` (batch, 2) the answer's start and end token. Positions outside the
    sequence are clamped to ``seq`` and ignored; the result is (start + end) / 2 of the
    cross entropies (``reduction`` "mean" or "sum" over the batch)."""
    seq = logits.shape[1]
    positions = positions.long().clamp(0, seq)
    start = F.cross_entropy(logits[..., 0], positions[:, 0], ignore_index=seq, reduction=reduction)
    end = F.cross_entropy(logits[..., 1], positions[:, 1], ignore_index=seq, reduction=reduction)
    return (start + end) / 2


def head_weight_names(config: EncoderConfig, head: str | None) -> list[str]:
    """Top-level weight names of a head (the pooler of BERT's sequence head excluded)."""
    head = _normalize_head(head)
    if head is None:
        return []
    if head == "token_classification":
        return ["classifier.weight", "classifier.bias"]
    if head == "question_answering":
        return ["qa_outputs.weight", "qa_outputs.bias"]
    if config.model_type == "distilbert":
        return [
            "pre_classifier.weight",
            "pre_classifier.bias",
            "classifier.weight",
            "classifier.bias",
        ]
    if config.model_type == "bert":
        return ["classifier.weight", "classifier.bias"]
    return [
        "classifier.dense.weight",
        "classifier.dense.bias",
        "classifier.out_proj.weight",
        "classifier.out_proj.bias",
    ]


def default_add_pooler(config: EncoderConfig, head: str | None) -> bool:
    """Whether transformers' class for (model type, head) has a pooler."""
    if head is None:
        return config.model_type in POOLER_MODEL_TYPES
    return head == "sequence_classification" and config.model_type == "bert"


class EncoderModel(nn.Module):
    """An encoder of a supported model type with an optional task head.

    ``model(input_ids, attention_mask=None, token_type_ids=None)`` returns the
    logits ((batch, seq, labels) for token classification, (batch, seq, 2) start and
    end logits for question answering, (batch, labels) for sequence classification)
    or, without a head, ``last_hidden_state``.
    ``model.encoder(...)`` always returns ``last_hidden_state``.
    """

    def __init__(
        self,
        config: EncoderConfig,
        head: str | None = None,
        *,
        add_pooler: bool | None = None,
        init_weights: bool = True,
    ):
        super().__init__()
        head = _normalize_head(head)
        self.config = config
        self.head = head
        if head is not None:
            if config.num_labels is None:
                config.set_labels(num_labels=2)  # transformers' default
            elif config.id2label is None:
                config.set_labels(num_labels=config.num_labels)
        if head is not None or add_pooler is None:
            # Task models follow transformers' class exactly (BERT's sequence head
            # needs the pooler, other heads have none); a bare encoder may leave it out.
            add_pooler = default_add_pooler(config, head)
        add_pooler = bool(add_pooler) and config.model_type in POOLER_MODEL_TYPES
        backbone = Encoder(config, add_pooler=add_pooler)
        self.__dict__["_backbone"] = backbone
        if head is None:
            # The bare encoder's weights have no prefix: share the backbone's
            # children as this module's own ("embeddings", "encoder", ...).
            for name, child in backbone.named_children():
                self._modules[name] = child
        else:
            self.add_module(config.base_model_prefix, backbone)

        n = config.num_labels
        h = config.hidden_size
        if head == "token_classification":
            self.dropout = nn.Dropout(config.head_dropout_prob)
            self.classifier = nn.Linear(h, n)
        elif head == "question_answering":
            if n != 2:
                raise ValueError(f"a question-answering head has 2 outputs (start, end), got {n}")
            # Only DistilBERT's QA model applies dropout before qa_outputs.
            qa_dropout = config.raw.get("qa_dropout", 0.1) if config.is_distilbert else 0.0
            self.dropout = nn.Dropout(float(qa_dropout))
            self.qa_outputs = nn.Linear(h, n)
        elif head == "sequence_classification":
            if config.model_type == "distilbert":
                self.pre_classifier = nn.Linear(h, h)
                self.classifier = nn.Linear(h, n)
                self.dropout = nn.Dropout(config.seq_classif_dropout)
            elif config.model_type == "bert":
                self.dropout = nn.Dropout(config.head_dropout_prob)
                self.classifier = nn.Linear(h, n)
            else:
                activation = "gelu" if config.model_type == "electra" else "tanh"
                self.classifier = ClassificationHead(h, n, activation, config.head_dropout_prob)
        if init_weights:
            self.reset_parameters()

    # -- structure -------------------------------------------------------------

    @property
    def encoder(self) -> Encoder:
        """The encoder backbone; ``model.encoder(ids, mask, types)`` -> last_hidden_state."""
        return self.__dict__["_backbone"]

    @property
    def num_labels(self) -> int | None:
        return None if self.head is None else self.config.num_labels

    @property
    def id2label(self) -> dict[int, str] | None:
        return self.config.id2label

    def head_parameter_names(self) -> list[str]:
        return head_weight_names(self.config, self.head)

    def train(self, mode: bool = True):
        super().train(mode)
        self.encoder.training = mode  # the unregistered backbone of a bare encoder
        return self

    def reset_parameters(self) -> None:
        """transformers' initialisation: normal(0, initializer_range) weights, zero
        biases, LayerNorm 1/0, zero padding embedding rows."""
        self.encoder.reset_parameters()
        self.reset_head_parameters()

    def reset_head_parameters(self) -> None:
        std = self.config.initializer_range
        with torch.no_grad():
            for name, module in self.named_modules():
                if isinstance(module, nn.Linear) and name.split(".")[0] in (
                    "classifier",
                    "pre_classifier",
                    "qa_outputs",
                ):
                    module.weight.normal_(0.0, std)
                    if module.bias is not None:
                        module.bias.zero_()

    def reset_pooler_parameters(self) -> None:
        pooler = self.encoder.pooler
        if pooler is not None:
            with torch.no_grad():
                pooler.dense.weight.normal_(0.0, self.config.initializer_range)
                pooler.dense.bias.zero_()

    # -- computation -------------------------------------------------------------

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
    ) -> torch.Tensor:
        hidden = self.encoder(input_ids, attention_mask, token_type_ids)
        return self.head_logits(hidden)

    def head_logits(self, hidden: torch.Tensor) -> torch.Tensor:
        """Apply the head to ``last_hidden_state`` (identity without a head)."""
        if self.head is None:
            return hidden
        if self.head == "token_classification":
            return self.classifier(self.dropout(hidden))
        if self.head == "question_answering":
            return self.qa_outputs(self.dropout(hidden))
        if self.config.model_type == "distilbert":
            x = F.relu(self.pre_classifier(hidden[:, 0]))
            return self.classifier(self.dropout(x))
        if self.config.model_type == "bert":
            return self.classifier(self.dropout(self.encoder.pool(hidden)))
        return self.classifier(hidden)

    def loss(
        self,
        logits: torch.Tensor,
        labels: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """The loss transformers' task models compute for ``labels``.

        Token classification: cross entropy over tokens, ignoring label -100 and
        (when given) masked positions. Question answering: ``labels`` (batch, 2) holds
        the start and end token of each answer; the mean of the start and end cross
        entropies over positions (positions outside the sequence are ignored).
        Sequence classification by ``problem_type`` (inferred like transformers when
        unset): regression -> MSE,
        single_label_classification -> cross entropy, multi_label_classification
        -> BCE with logits.
        """
        if self.head is None:
            raise ValueError("a bare encoder has no loss")
        n = self.config.num_labels
        if self.head == "token_classification":
            labels = labels.long()
            if attention_mask is not None:
                labels = labels.masked_fill(attention_mask == 0, -100)
            return F.cross_entropy(logits.reshape(-1, n), labels.reshape(-1), ignore_index=-100)
        if self.head == "question_answering":
            return span_loss(logits, labels)
        problem = self.config.problem_type
        if problem is None:
            if n == 1:
                problem = "regression"
            elif labels.dtype in (torch.long, torch.int):
                problem = "single_label_classification"
            else:
                problem = "multi_label_classification"
        if problem == "regression":
            if n == 1:
                return F.mse_loss(logits.squeeze(-1), labels.squeeze(-1).to(logits.dtype))
            return F.mse_loss(logits, labels.to(logits.dtype))
        if problem == "single_label_classification":
            return F.cross_entropy(logits.view(-1, n), labels.view(-1).long())
        if problem == "multi_label_classification":
            return F.binary_cross_entropy_with_logits(logits, labels.to(logits.dtype))
        raise ValueError(f"unknown problem_type {problem!r}")

    # -- files ----------------------------------------------------------------------

    def save_pretrained(self, out_dir: str | os.PathLike) -> None:
        """Write config.json + model.safetensors in Hugging Face layout."""
        from nlpengine.torch.checkpoint import save_pretrained

        save_pretrained(self, out_dir)

    @classmethod
    def from_pretrained(cls, model_dir: str | os.PathLike, **kwargs) -> EncoderModel:
        from nlpengine.torch.checkpoint import load_pretrained

        return load_pretrained(model_dir, **kwargs)

    def extra_repr(self) -> str:
        c = self.config
        return (
            f"model_type={c.model_type}, head={self.head}, hidden={c.hidden_size}, "
            f"layers={c.num_hidden_layers}, num_labels={self.num_labels}"
        )
