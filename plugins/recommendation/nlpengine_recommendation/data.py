"""The recommendation task's files: the item catalog (JSONL ``{"item_id", "text"}``) and
interactions (JSONL ``{"user_id", "item_id", "rating" or "label", "timestamp"}``).

Ids may be JSON strings or integers; ``1`` and ``"1"`` name the same item or user (ids are
compared by their text). Both files are read once per job; an unusable record is an
``InputError`` naming the file and line.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from nlpengine.io import InputError, read_records
from nlpengine.tasks import RecordError


def id_key(value, field: str) -> str:
    """The text an item or user id is compared by; a RecordError for anything but a
    string or an integer."""
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        kind = "null" if value is None else type(value).__name__
        raise RecordError(f"field '{field}' must be a string or an integer, got {kind}")
    return str(value)


def interaction_weight(record: dict) -> float:
    """How much an interaction says the user likes the item: its ``rating``, else its
    ``label`` (0 = a negative), else 1. Weights <= 0 are left out of user profiles."""
    for field in ("rating", "label"):
        value = record.get(field)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise RecordError(f"field '{field}' must be a number, got {type(value).__name__}")
        return float(value)
    return 1.0


class ItemCatalog:
    """Items by position: ``ids`` (as given in the file), ``texts`` and ``position(key)``."""

    def __init__(self, ids: list, texts: list[str], path: Path | None = None):
        self.ids = ids
        self.texts = texts
        self.path = path
        self._index = {str(item_id): i for i, item_id in enumerate(ids)}

    def __len__(self) -> int:
        return len(self.ids)

    def position(self, key: str) -> int | None:
        return self._index.get(key)

    @classmethod
    def read(cls, path: Path) -> ItemCatalog:
        path = Path(path)
        ids: list = []
        texts: list[str] = []
        seen: dict[str, int] = {}
        for item in read_records(path, "jsonl"):
            if item.error:
                raise InputError(f"{path}:{item.line}: {item.error}")
            record = item.record
            try:
                key = id_key(record.get("item_id"), "item_id")
                text = record.get("text")
                if not isinstance(text, str):
                    raise RecordError("missing text field 'text' (a string)")
            except RecordError as e:
                raise InputError(f"{path}:{item.line}: {e}") from e
            if key in seen:
                raise InputError(
                    f"{path}:{item.line}: item_id {record['item_id']!r} already given on "
                    f"line {seen[key]}"
                )
            seen[key] = item.line
            ids.append(record["item_id"])
            texts.append(text)
        if not ids:
            raise InputError(f"{path}: no items")
        return cls(ids, texts, path)


@dataclass(frozen=True)
class Interaction:
    user: str  # the user id's key
    item: int  # position in the catalog
    weight: float
    timestamp: float
    line: int


def read_interactions(path: Path, catalog: ItemCatalog) -> Iterator[Interaction]:
    """The interactions of a file, in file order; an unknown item is an error."""
    path = Path(path)
    for item in read_records(path, "jsonl"):
        if item.error:
            raise InputError(f"{path}:{item.line}: {item.error}")
        record = item.record
        try:
            user = id_key(record.get("user_id"), "user_id")
            key = id_key(record.get("item_id"), "item_id")
            position = catalog.position(key)
            if position is None:
                raise RecordError(f"item_id {record['item_id']!r} is not in {catalog.path}")
            weight = interaction_weight(record)
            timestamp = record.get("timestamp", 0)
            if isinstance(timestamp, bool) or not isinstance(timestamp, (int, float)):
                raise RecordError("field 'timestamp' must be a number")
        except RecordError as e:
            raise InputError(f"{path}:{item.line}: {e}") from e
        yield Interaction(user, position, weight, float(timestamp), item.line)


def user_histories(path: Path, catalog: ItemCatalog) -> dict[str, list[Interaction]]:
    """Each user's interactions, oldest first (by timestamp, then file order)."""
    histories: dict[str, list[Interaction]] = {}
    for interaction in read_interactions(path, catalog):
        histories.setdefault(interaction.user, []).append(interaction)
    for history in histories.values():
        history.sort(key=lambda x: x.timestamp)  # stable: ties keep file order
    return histories
