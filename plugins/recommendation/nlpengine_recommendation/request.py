"""A ranking request, as ``engine run --task recommendation`` reads it per input line:

``{"user_id": U}`` (the user's history comes from the ``--interactions`` file),
``{"history": [item_id, {"item_id", "rating" or "label"}, ...]}`` or a profile text in the
text field (``--text-field``, default ``text``); optional ``"candidates": [item_id, ...]``
(default: every item, less those in the user's history) and ``"k"`` (items returned).
An explicit history, then a profile text, win over the user's interactions.
"""

from __future__ import annotations

from dataclasses import dataclass

from nlpengine.tasks import RecordError, record_text

from nlpengine_recommendation.data import id_key, interaction_weight


@dataclass(frozen=True)
class Request:
    user_id: object = None  # as given (echoed in the output)
    history: tuple[tuple[str, float], ...] | None = None  # (item key, weight)
    profile: str | None = None
    candidates: tuple[str, ...] | None = None  # item keys
    k: int | None = None


def _history(value) -> tuple[tuple[str, float], ...]:
    if not isinstance(value, list):
        raise RecordError(f"field 'history' must be a list, got {type(value).__name__}")
    entries = []
    for n, entry in enumerate(value):
        if isinstance(entry, dict):
            try:
                entries.append((id_key(entry.get("item_id"), "item_id"), interaction_weight(entry)))
            except RecordError as e:
                raise RecordError(f"history[{n}]: {e}") from None
        else:
            entries.append((id_key(entry, f"history[{n}]"), 1.0))
    return tuple(entries)


def parse_request(record: dict, text_field: str = "text") -> Request:
    """The request a record holds; a RecordError naming the field when it cannot be used."""
    user_id = record.get("user_id")
    if user_id is not None:
        id_key(user_id, "user_id")
    history = None if record.get("history") is None else _history(record["history"])
    # A string of Unicode text when given (record_text's checks).
    profile = record_text(record, text_field) if record.get(text_field) is not None else None
    if user_id is None and history is None and profile is None:
        raise RecordError(f"a request needs 'user_id', 'history' or a profile text '{text_field}'")
    candidates = record.get("candidates")
    if candidates is not None:
        if not isinstance(candidates, list):
            raise RecordError(f"field 'candidates' must be a list, got {type(candidates).__name__}")
        candidates = tuple(id_key(c, f"candidates[{n}]") for n, c in enumerate(candidates))
    k = record.get("k")
    if k is not None and (isinstance(k, bool) or not isinstance(k, int) or k < 0):
        raise RecordError(f"field 'k' must be a non-negative integer (0: all), got {k!r}")
    return Request(user_id, history, profile, candidates, k)
