"""Tag schemes: detecting them from a label set, reading tags, and writing tags for words.

Supported schemes (``prefix-TYPE`` labels, ``O`` outside):

- ``IO``: every label is a bare type (``PER``) or ``I-TYPE``; adjacent tokens of one type
  form one entity.
- ``BIO`` (IOB2, also read correctly when the data is IOB1): ``B-`` starts an entity, ``I-``
  continues one of the same type (an ``I-`` after ``O`` or another type starts one).
- ``BIOES`` (``S-`` single, ``E-`` end) and its synonym ``BILOU`` (``U-`` unit, ``L-`` last):
  an entity also ends after ``E-``/``L-`` and ``S-``/``U-`` is an entity on its own.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from functools import lru_cache

__all__ = ["SCHEMES", "detect_scheme", "entities_to_tags", "split_tag"]

#: Scheme names accepted by :func:`entities_to_tags` and ``NerPipeline(scheme=...)``.
SCHEMES = ("IO", "BIO", "BIOES", "BILOU")

# BILOU prefixes are read as their BIOES equivalents.
_PREFIXES = {"B": "B", "I": "I", "E": "E", "S": "S", "L": "E", "U": "S"}
_SCHEME_PREFIXES = {"IO": "BI", "BIO": "BI", "BIOES": "BIES", "BILOU": "BILU"}


def _check_scheme(scheme: str) -> str:
    name = str(scheme).upper()
    if name == "IOB2":
        name = "BIO"
    if name == "IOBES":
        name = "BIOES"
    if name not in SCHEMES:
        raise ValueError(f"unknown tag scheme {scheme!r}; expected one of {', '.join(SCHEMES)}")
    return name


def detect_scheme(labels: Iterable[str]) -> str:
    """The scheme of a model's label set (``id2label`` values).

    ``S-``/``E-`` labels mean BIOES, ``U-``/``L-`` labels BILOU, otherwise ``B-`` labels mean
    BIO, and a label set without any of those prefixes (``PER``, ``I-PER``) is IO.
    """
    prefixes = {label[0] for label in labels if len(label) > 2 and label[1] == "-"}
    if prefixes & {"S", "E"}:
        return "BIOES"
    if prefixes & {"U", "L"}:
        return "BILOU"
    if "B" in prefixes:
        return "BIO"
    return "IO"


# Cached: a model has a few dozen labels, and decoding asks for every token's (a 4,000-review
# NER job made 390,000 calls, 0.6 s of its Python time, checking the scheme each time).
@lru_cache(maxsize=4096)
def split_tag(label: str, scheme: str = "BIO") -> tuple[str, str]:
    """``(prefix, type)`` of a label under ``scheme``.

    The prefix is one of ``B``, ``I``, ``E``, ``S`` (BILOU's ``L``/``U`` read as ``E``/``S``);
    a label without a prefix the scheme knows, ``O`` included, is ``("I", label)``, as the
    transformers pipeline reads it: adjacent tokens with the same bare label group together.
    """
    allowed = _SCHEME_PREFIXES[_check_scheme(scheme)]
    if len(label) >= 2 and label[1] == "-" and label[0] in allowed:
        return _PREFIXES[label[0]], label[2:]
    return "I", label


def _entity_type(label: str) -> str:
    """An entity's type with any tag prefix removed (``B-PER`` -> ``PER``)."""
    if len(label) > 2 and label[1] == "-" and label[0] in _PREFIXES:
        return label[2:]
    return label


def entities_to_tags(
    entities: Iterable[Mapping],
    token_spans: Sequence[tuple[int, int]],
    scheme: str = "BIO",
) -> list[str]:
    """Project character-span entities onto a word tokenization.

    ``entities``: records with ``label``, ``start`` and ``end`` (character offsets, end
    exclusive), as :class:`NerPipeline` returns them; a label that still carries a tag prefix
    (``B-PER`` from ``aggregation_strategy="none"``) is reduced to its type.
    ``token_spans``: ``(start, end)`` character offsets of each word of the same text.

    A word belongs to the entity it overlaps by the most characters (the earlier entity on a
    tie); a zero-width word belongs to an entity whose span contains its position. Each
    entity's words are tagged ``B-``, then ``I-`` (BIO); all ``I-`` (IO); ``B-``, ``I-``...,
    ``E-``, or ``S-`` for a single word (BIOES; ``B``/``I``/``L``/``U`` for BILOU). Words of
    no entity are ``O``. Returns one tag per word.
    """
    scheme = _check_scheme(scheme)
    spans = [(int(s), int(e)) for s, e in token_spans]
    ents = sorted(
        ((int(ent["start"]), int(ent["end"]), _entity_type(str(ent["label"]))) for ent in entities),
        key=lambda item: (item[0], item[1]),
    )
    owner: list[int | None] = [None] * len(spans)
    for w, (ws, we) in enumerate(spans):
        best, best_overlap = None, 0
        for k, (es, ee, _) in enumerate(ents):
            if es >= max(we, ws + 1):
                break  # entities are sorted by start: none further can overlap
            if ws == we:
                overlap = 1 if es <= ws < ee else 0
            else:
                overlap = min(we, ee) - max(ws, es)
            if overlap > best_overlap:
                best, best_overlap = k, overlap
        owner[w] = best

    tags = ["O"] * len(spans)
    w = 0
    while w < len(spans):
        k = owner[w]
        if k is None:
            w += 1
            continue
        run_end = w
        while run_end + 1 < len(spans) and owner[run_end + 1] == k:
            run_end += 1
        kind = ents[k][2]
        for i in range(w, run_end + 1):
            tags[i] = _tag(scheme, kind, i - w, run_end - w + 1)
        w = run_end + 1
    return tags


def _tag(scheme: str, kind: str, position: int, length: int) -> str:
    if scheme == "IO":
        return f"I-{kind}"
    if scheme == "BIO":
        return f"{'B' if position == 0 else 'I'}-{kind}"
    single, last = ("S", "E") if scheme == "BIOES" else ("U", "L")
    if length == 1:
        return f"{single}-{kind}"
    if position == 0:
        return f"B-{kind}"
    return f"{last if position == length - 1 else 'I'}-{kind}"
