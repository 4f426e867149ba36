"""``engine eval --task recommendation``: rank items for every user of a test
interactions file and score the rankings (:mod:`nlpengine_recommendation.metrics`).

Each test interaction is a relevant item for its user (gain 1; a ``label`` of 0 makes it
an irrelevant candidate instead). A user's candidates are every item they have not
interacted with in the ``--interactions`` (training) file, plus their test items; with
``--eval-negatives N`` instead their test items and N items drawn from the rest (seeded,
without replacement). Users with no training history cannot be ranked from it and are
left out (counted in ``users_without_history``).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
from nlpengine.io import InputError, read_records
from nlpengine.tasks import RecordError

from nlpengine_recommendation.data import ItemCatalog, id_key

USERS_PER_CALL = 64
SEED = 13


def read_test(path: Path, catalog: ItemCatalog) -> dict[str, tuple[object, dict[int, float]]]:
    """Per user key: (the user id as given, {catalog position: relevance})."""
    path = Path(path)
    users: dict[str, tuple[object, dict[int, float]]] = {}
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
            label = record.get("label", 1)
            if isinstance(label, bool) or not isinstance(label, (int, float)) or label < 0:
                raise RecordError("field 'label' must be a non-negative number")
        except RecordError as e:
            raise InputError(f"{path}:{item.line}: {e}") from e
        users.setdefault(user, (record["user_id"], {}))[1][position] = float(label)
    if not users:
        raise InputError(f"{path}: no interactions")
    return users


def candidates_for(
    num_items: int, seen: set[int], test_items: dict[int, float], negatives: int, rng
) -> np.ndarray:
    """The catalog positions a user is ranked over (see the module docstring)."""
    everything = np.arange(num_items, dtype=np.int64)
    test = np.fromiter(test_items, dtype=np.int64)
    excluded = np.fromiter(seen | set(test_items), dtype=np.int64)
    rest = everything[~np.isin(everything, excluded)]
    if negatives:
        rest = np.sort(rng.choice(rest, size=min(negatives, len(rest)), replace=False))
    return np.concatenate([test, rest])


def evaluate_rankings(
    score: Callable[[list, list[np.ndarray]], list[np.ndarray]],
    test: dict[str, tuple[object, dict[int, float]]],
    seen: dict[str, set[int]],
    num_items: int,
    k: int,
    negatives: int = 0,
) -> dict:
    """Metrics of ``score(user_ids, candidates) -> scores per user`` over the test users;
    ``seen`` gives each user's training items."""
    from nlpengine_recommendation.metrics import ranking_metrics

    rng = np.random.default_rng(SEED)
    pending: list[tuple[object, np.ndarray, np.ndarray]] = []
    pairs: list[tuple[np.ndarray, np.ndarray]] = []
    without_history = 0

    def flush() -> None:
        scores = score([u for u, _, _ in pending], [c for _, c, _ in pending])
        pairs.extend((rel, s) for (_, _, rel), s in zip(pending, scores, strict=True))
        pending.clear()

    for user, (user_id, items) in test.items():
        if user not in seen:
            without_history += 1
            continue
        candidates = candidates_for(num_items, seen[user], items, negatives, rng)
        relevance = np.zeros(len(candidates))
        relevance[: len(items)] = list(items.values())  # the test items come first
        pending.append((user_id, candidates, relevance))
        if len(pending) >= USERS_PER_CALL:
            flush()
    if pending:
        flush()
    metrics = ranking_metrics(pairs, k=k)
    metrics["users_without_history"] = without_history
    metrics["candidates"] = f"{negatives} sampled negatives" if negatives else "all unseen items"
    return metrics
