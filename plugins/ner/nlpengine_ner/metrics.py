"""Entity-level NER metrics computed with seqeval."""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["ner_metrics"]

# Prefixes each seqeval scheme accepts (besides the bare "O").
_SCHEME_PREFIXES = {
    "IOB1": "IB",
    "IOB2": "IB",
    "IOE1": "IE",
    "IOE2": "IE",
    "IOBES": "IBES",
    "BILOU": "BILU",
}
_ALIASES = {"BIO": "IOB2", "BIOES": "IOBES"}


def ner_metrics(
    gold: Sequence[Sequence[str]],
    pred: Sequence[Sequence[str]],
    *,
    mode: str | None = "strict",
    scheme: str = "IOB2",
) -> dict:
    """Entity-level precision, recall and F1 of ``pred`` against ``gold`` tag sequences.

    Default: seqeval's strict mode with the IOB2 scheme, where an entity counts only when its
    type, first and last token all match and an ``I-`` without a ``B-`` starts no entity.
    ``scheme`` may be ``IOB2`` (``BIO``), ``IOBES`` (``BIOES``), ``BILOU``, ``IOE2``, ``IOB1``,
    ``IOE1``; ``mode=None`` selects seqeval's lenient conlleval-compatible default instead
    (``scheme`` is then ignored).

    Returns ``{"precision", "recall", "f1", "support", "per_type": {TYPE: {"precision",
    "recall", "f1", "support"}}}`` with micro averages over all entities; ``support`` counts
    gold entities. An undefined ratio (no predicted or no gold entities) is 0.0.
    Raises ``ValueError`` naming the first sentence whose lengths differ or whose tag does
    not fit the scheme.
    """
    from seqeval.metrics.sequence_labeling import precision_recall_fscore_support as prf_lenient
    from seqeval.metrics.v1 import precision_recall_fscore_support as prf_strict

    gold_lists, pred_lists = _validate(gold, pred)
    if mode == "strict":
        scheme_name = _ALIASES.get(str(scheme).upper(), str(scheme).upper())
        if scheme_name not in _SCHEME_PREFIXES:
            raise ValueError(
                f"unknown scheme {scheme!r}; expected one of {', '.join(_SCHEME_PREFIXES)}"
            )
        _check_tags(gold_lists, "gold", _SCHEME_PREFIXES[scheme_name])
        _check_tags(pred_lists, "pred", _SCHEME_PREFIXES[scheme_name])
        import seqeval.scheme

        scheme_cls = getattr(seqeval.scheme, scheme_name)

        def prf(average):
            return prf_strict(
                gold_lists, pred_lists, average=average, zero_division=0, scheme=scheme_cls
            )

        types = sorted(
            seqeval.scheme.Entities(gold_lists, scheme_cls).unique_tags
            | seqeval.scheme.Entities(pred_lists, scheme_cls).unique_tags
        )
    elif mode is None:

        def prf(average):
            return prf_lenient(gold_lists, pred_lists, average=average, zero_division=0)

        from seqeval.metrics.sequence_labeling import get_entities

        found = get_entities(gold_lists) + get_entities(pred_lists)
        types = sorted({kind for kind, _, _ in found})
    else:
        raise ValueError(f"mode must be 'strict' or None, got {mode!r}")

    precision, recall, f1, support = prf("micro")
    per_type = {}
    if types:
        p_all, r_all, f_all, s_all = prf(None)
        for i, name in enumerate(types):
            per_type[name] = {
                "precision": float(p_all[i]),
                "recall": float(r_all[i]),
                "f1": float(f_all[i]),
                "support": int(s_all[i]),
            }
    return {
        "precision": float(precision),
        "recall": float(recall),
        "f1": float(f1),
        "support": int(support),
        "per_type": per_type,
    }


def _validate(gold, pred) -> tuple[list[list[str]], list[list[str]]]:
    if isinstance(gold, str) or isinstance(pred, str):
        raise TypeError("gold and pred must be lists of tag sequences, not strings")
    gold_lists = [_as_tags(seq, "gold", i) for i, seq in enumerate(gold)]
    pred_lists = [_as_tags(seq, "pred", i) for i, seq in enumerate(pred)]
    if len(gold_lists) != len(pred_lists):
        raise ValueError(f"gold has {len(gold_lists)} sentences but pred has {len(pred_lists)}")
    for i, (g, p) in enumerate(zip(gold_lists, pred_lists, strict=True)):
        if len(g) != len(p):
            raise ValueError(f"sentence {i}: gold has {len(g)} tags but pred has {len(p)}")
    return gold_lists, pred_lists


def _as_tags(seq, side: str, index: int) -> list[str]:
    if isinstance(seq, str):
        raise TypeError(f"{side} sentence {index}: expected a list of tags, got a string")
    tags = list(seq)
    for j, tag in enumerate(tags):
        if not isinstance(tag, str):
            raise TypeError(f"{side} sentence {index}, token {j}: tag {tag!r} is not a string")
    return tags


class TagError(ValueError):
    """A tag that does not fit the scheme; ``side`` ("gold" or "pred"), ``sentence`` and
    ``token`` (0-based) say where."""

    def __init__(self, side: str, sentence: int, token: int, message: str):
        super().__init__(f"{side} sentence {sentence}, token {token}: {message}")
        self.side, self.sentence, self.token, self.detail = side, sentence, token, message


def _check_tags(sequences: list[list[str]], side: str, prefixes: str) -> None:
    for i, seq in enumerate(sequences):
        for j, tag in enumerate(seq):
            if tag == "O":
                continue
            if len(tag) < 3 or tag[1] != "-" or tag[0] not in prefixes:
                raise TagError(
                    side,
                    i,
                    j,
                    f"tag {tag!r} does not fit the scheme "
                    f"(expected O or one of {', '.join(p + '-TYPE' for p in prefixes)})",
                )
