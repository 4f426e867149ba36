"""Training for ``engine train --task recommendation --items F``: the training file is an
interactions file (JSONL ``{"user_id", "item_id", "rating" or "label", "timestamp"}``).

Every interaction with a positive weight that has an earlier liked item of its user is one
example: the user's most recent liked items before it (``--max-history``, default 10) and
the item as the positive. Examples are ordered by recency (each user's latest first, then
each user's second latest, ...), so ``--limit-train N`` keeps the most recent ones of
every user.

* **bi-encoder** (the base is a bare encoder): InfoNCE with in-batch negatives. A batch's
  distinct items are encoded once; a user is the rating-weighted mean of their history
  items' vectors; the logits are the cosine similarities of users and the batch's
  positives divided by the temperature (0.05), less the log of each positive's share of
  the training positives (the sampling-bias correction of Yi et al., RecSys 2019: in-batch
  negatives are drawn by popularity, and uncorrected the model would learn to rank popular
  items down). Another example's positive that is the same item, or in the user's
  history, is masked out as a negative. The output is a
  sentence-transformers directory (pooling of the base, and a Normalize module).
* **cross-encoder** (``--mode cross-encoder``, or a base with a sequence-classification
  head): binary cross entropy on a one-logit sequence-classification head over (user text,
  item text) pairs: the positive and 3 items sampled (seeded, once) from those the user
  never interacted with.
"""

from __future__ import annotations

import json
import math
import random
from collections import Counter
from pathlib import Path

from nlpengine.io import InputError

from nlpengine_recommendation.data import ItemCatalog, user_histories
from nlpengine_recommendation.profile import profile_items, user_text

TRAIN_HISTORY = 10
NEGATIVES = 3
SEED = 13
LABELS = ["LABEL_0"]
#: The batch keys the model takes (the cross-encoder's batches have only the first three).
MODEL_INPUTS = (
    "input_ids",
    "attention_mask",
    "token_type_ids",
    "user_weights",
    "positive",
    "negative_mask",
    "positive_log_q",
)


def read_examples(path: Path, items=None, max_history=None, mode=None) -> list[dict]:
    if items is None:
        raise InputError("recommendation training needs the items file: --items FILE")
    catalog = ItemCatalog.read(Path(items))
    history_size = max_history or TRAIN_HISTORY
    per_user = []
    for user, history in user_histories(Path(path), catalog).items():
        entries = [(x.item, x.weight) for x in history]
        seen = {x.item for x in history}
        examples = []
        for p in range(1, len(history)):
            if history[p].weight <= 0:
                continue
            liked = profile_items(entries[:p], history_size)
            if liked:
                examples.append(
                    {"user": user, "history": liked, "positive": history[p].item,
                     "seen": seen, "catalog": catalog}
                )  # fmt: skip
        per_user.append(examples)
    ordered = []
    for depth in range(max((len(e) for e in per_user), default=0)):
        ordered.extend(examples[-1 - depth] for examples in per_user if depth < len(examples))
    if not ordered:
        raise InputError(f"{path}: no user has a liked item after an earlier liked item")
    return ordered


def label_list(examples: list[dict]) -> list[str]:
    return list(LABELS)


def _has_sequence_head(model_dir: Path) -> bool:
    try:
        config = json.loads((Path(model_dir) / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    architectures = config.get("architectures") or []
    return any(str(a).endswith("ForSequenceClassification") for a in architectures)


def training_mode(base_dir: Path, mode: str | None) -> str:
    """The mode asked for (a bare base can become either), else the base's own."""
    return mode or ("cross-encoder" if _has_sequence_head(base_dir) else "bi-encoder")


def featurize_options(base_dir: Path, items=None, max_history=None, mode=None) -> dict:
    return {"mode": training_mode(base_dir, mode)}


def featurize(examples, tokenizer, label2id, max_length: int, mode: str = "bi-encoder"):
    tokenizer.no_padding()
    tokenizer.enable_truncation(max_length=max_length, strategy="longest_first")
    catalog: ItemCatalog = examples[0]["catalog"]
    if mode == "cross-encoder":
        return _pair_features(examples, tokenizer, catalog)
    used = sorted({i for e in examples for i in [e["positive"], *(h for h, _ in e["history"])]})
    encodings = tokenizer.encode_batch([catalog.texts[i] for i in used])
    tokens = {i: enc.ids for i, enc in zip(used, encodings, strict=True)}  # shared by all
    counts = Counter(e["positive"] for e in examples)
    return [
        {"history": [h for h, _ in e["history"]], "weights": [w for _, w in e["history"]],
         "positive": e["positive"], "tokens": tokens,
         "log_q": math.log(counts[e["positive"]] / len(examples))}
        for e in examples
    ]  # fmt: skip


def _pair_features(examples, tokenizer, catalog: ItemCatalog) -> list[dict]:
    rng = random.Random(SEED)
    pairs, labels = [], []
    for e in examples:
        text = user_text([catalog.texts[h] for h, _ in e["history"]])
        pairs.append((text, catalog.texts[e["positive"]]))
        labels.append(1.0)
        if len(e["seen"]) >= len(catalog):
            continue
        for _ in range(NEGATIVES):
            negative = rng.randrange(len(catalog))
            while negative in e["seen"]:
                negative = rng.randrange(len(catalog))
            pairs.append((text, catalog.texts[negative]))
            labels.append(0.0)
    encodings = tokenizer.encode_batch(pairs)
    return [
        {"input_ids": enc.ids, "attention_mask": enc.attention_mask,
         "token_type_ids": enc.type_ids, "labels": [label]}
        for enc, label in zip(encodings, labels, strict=True)
    ]  # fmt: skip


def collate(features: list[dict], pad_id: int) -> dict:
    """A bi-encoder batch: the distinct items' padded tokens, ``user_weights`` (users x
    items, rows summing to 1), ``positive`` (each user's positive among the items),
    ``negative_mask`` (users x users), ``positive_log_q`` (each positive's log share of the
    training positives) and ``labels`` (the diagonal). Pair features go
    through the trainer's own padding."""
    import torch
    from nlpengine.training.data import collate as pad_pairs

    if "history" not in features[0]:
        return pad_pairs(features, pad_id, token_labels=False)
    tokens = features[0]["tokens"]
    items = sorted({i for f in features for i in [f["positive"], *f["history"]]})
    column = {item: j for j, item in enumerate(items)}
    longest = max(len(tokens[i]) for i in items)
    ids = torch.full((len(items), longest), pad_id, dtype=torch.long)
    mask = torch.zeros((len(items), longest), dtype=torch.long)
    for j, item in enumerate(items):
        ids[j, : len(tokens[item])] = torch.tensor(tokens[item])
        mask[j, : len(tokens[item])] = 1
    weights = torch.zeros((len(features), len(items)))
    for b, f in enumerate(features):
        for item, weight in zip(f["history"], f["weights"], strict=True):
            weights[b, column[item]] += weight
    weights = weights / weights.sum(dim=1, keepdim=True)
    positive = torch.tensor([column[f["positive"]] for f in features], dtype=torch.long)
    same = positive[:, None] == positive[None, :]
    in_history = weights[:, positive] > 0
    negative_mask = (same | in_history) & ~torch.eye(len(features), dtype=torch.bool)
    return {
        "input_ids": ids,
        "attention_mask": mask,
        "token_type_ids": torch.zeros_like(ids),
        "user_weights": weights,
        "positive": positive,
        "negative_mask": negative_mask,
        "positive_log_q": torch.tensor([f["log_q"] for f in features]),
        "labels": torch.arange(len(features)),
    }


def loss(logits, labels):
    """Summed loss and count: cross entropy over in-batch candidates (bi-encoder, integer
    labels) or binary cross entropy of one logit per pair (cross-encoder, float labels)."""
    import torch.nn.functional as F

    if labels.is_floating_point():
        total = F.binary_cross_entropy_with_logits(
            logits.reshape(-1), labels.reshape(-1).to(logits.dtype), reduction="sum"
        )
        return total, labels.numel()
    return F.cross_entropy(logits, labels, reduction="sum"), labels.shape[0]


def load_model(base_dir: Path, labels, problem_type, items=None, max_history=None, mode=None):
    from nlpengine.torch import load_pretrained

    if training_mode(base_dir, mode) == "cross-encoder":
        return load_pretrained(base_dir, head="sequence_classification", num_labels=1)
    from nlpengine_recommendation.bi_encoder import BiEncoder
    from nlpengine_recommendation.pooling import PoolingConfig

    return BiEncoder(load_pretrained(base_dir, head="none"), PoolingConfig.from_directory(base_dir))
