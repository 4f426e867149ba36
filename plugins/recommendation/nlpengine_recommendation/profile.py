"""What stands for a user: the history items a profile is built from, and the user text a
cross-encoder reads (shared by the pipeline and training, so both see the same inputs)."""

from __future__ import annotations

from collections.abc import Sequence

#: Between item texts in a user text, the most recent item first.
SEPARATOR = " | "


def profile_items(
    history: Sequence[tuple[int, float]], max_history: int | None
) -> list[tuple[int, float]]:
    """The (item, weight) entries a profile uses: those with a positive weight (a rating,
    or label 1), the most recent ``max_history`` of them (None: all), oldest first."""
    liked = [(item, weight) for item, weight in history if weight > 0]
    if max_history is not None and max_history > 0:
        liked = liked[-max_history:]
    return liked


def user_text(item_texts_oldest_first: Sequence[str]) -> str:
    """A cross-encoder's user text: the history items' texts, most recent first (so that
    cutting the pair to the model's length drops the oldest)."""
    return SEPARATOR.join(reversed(list(item_texts_oldest_first)))
