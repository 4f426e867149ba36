"""Helpers for the nlpengine.torch tests.

The venv holds an installed *copy* of nlpengine (``make build``), which may predate
the source tree's ``python/nlpengine/torch``. The tests exercise the source tree:
``nlpengine.torch`` is imported from there (the native runtime still comes from the
installed package).
"""

from __future__ import annotations

from pathlib import Path

import nlpengine

HEADS = (None, "sequence_classification", "token_classification", "question_answering")


def hf_auto_class(head):
    """transformers' Auto class for a head."""
    import transformers

    return {
        None: transformers.AutoModel,
        "sequence_classification": transformers.AutoModelForSequenceClassification,
        "token_classification": transformers.AutoModelForTokenClassification,
        "question_answering": transformers.AutoModelForQuestionAnswering,
    }[head]


def save_tiny_head_model(tmp_path, arch, head, *, seed=0, num_labels=3, **overrides):
    """A seeded tiny transformers model of ``arch`` with ``head`` (None: AutoModel),
    saved in HF layout. Returns ``(model_dir, model)``."""
    import torch
    from conftest import _randomize_parameters, tiny_config

    if arch == "camembert":  # not in ARCH_CONFIGS: RoBERTa's tiny sizes
        from conftest import ARCH_CONFIGS
        from transformers import AutoConfig

        cfg = AutoConfig.for_model(arch, **{**ARCH_CONFIGS["roberta"], **overrides})
    else:
        cfg = tiny_config(arch, **overrides)
    if head is not None:
        cfg.num_labels = 2 if head == "question_answering" else num_labels
    torch.manual_seed(seed)
    model = hf_auto_class(head).from_config(cfg)
    _randomize_parameters(model, seed)
    model.eval()
    model_dir = Path(tmp_path) / f"{arch}-{head or 'base'}-{seed}"
    model.save_pretrained(model_dir)
    return model_dir, model


def hf_forward(model, head, input_ids, attention_mask, token_type_ids):
    """transformers output (logits, or last_hidden_state without a head) as numpy."""
    import torch

    kwargs = {"input_ids": torch.from_numpy(input_ids)}
    if attention_mask is not None:
        kwargs["attention_mask"] = torch.from_numpy(attention_mask)
    if token_type_ids is not None:
        kwargs["token_type_ids"] = torch.from_numpy(token_type_ids)
    model.eval()
    with torch.no_grad():
        out = model(**kwargs)
    if head == "question_answering":  # the runtime's (batch, seq, 2) start/end logits
        return torch.stack([out.start_logits, out.end_logits], dim=-1).float().numpy()
    return (out.last_hidden_state if head is None else out.logits).float().numpy()


def ours_forward(model, input_ids, attention_mask, token_type_ids):
    import torch

    def t(a):
        return None if a is None else torch.from_numpy(a)

    model.eval()
    with torch.no_grad():
        return model(t(input_ids), t(attention_mask), t(token_type_ids)).float().numpy()


def runtime_forward(model_dir, head, input_ids, attention_mask, token_type_ids):
    from conftest import encode_kwargs

    out = nlpengine.load(model_dir).encode(
        input_ids, **encode_kwargs(input_ids, attention_mask, token_type_ids)
    )
    return out.last_hidden_state if head is None else out.logits


def compare(actual, expected, attention_mask, head, tol, label):
    """Max abs diff over unmasked positions (per token) or rows (sequence heads)."""
    from conftest import assert_close, assert_close_unmasked

    if head == "sequence_classification":
        return assert_close(actual, expected, tol, label)
    return assert_close_unmasked(actual, expected, attention_mask, tol, label)
