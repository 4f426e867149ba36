"""Ranking items for users on the nlpengine runtime, in one of two modes chosen by the
model directory:

* **bi-encoder** (a bare encoder, e.g. a sentence-transformers directory): items and
  profile texts become pooled embeddings (:mod:`nlpengine_recommendation.pooling`); a user
  is the mean of their history items' vectors, weighted by rating (or a profile text's
  vector); score = cosine (default) or dot product. Item vectors are cached for the job.
* **cross-encoder** (a ``*ForSequenceClassification`` directory): each (user text, item
  text) pair is scored by the head: the logit of a one-label head, or the log-odds of
  label 1 (``logit1 - logit0``) of a two-label head. The user text is the history items'
  texts, most recent first, or the profile text.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import nlpengine
import numpy as np
from nlpengine.errors import ModelError

from nlpengine_recommendation.batching import TextBatches
from nlpengine_recommendation.cache import EmbeddingCache
from nlpengine_recommendation.data import ItemCatalog, user_histories
from nlpengine_recommendation.pooling import PoolingConfig, l2_normalize, pool
from nlpengine_recommendation.profile import profile_items, user_text
from nlpengine_recommendation.request import Request

MODES = ("bi-encoder", "cross-encoder")
SCORES = ("cosine", "dot")


def resolve_mode(requested: str | None, has_sequence_head: bool, where: str) -> str:
    """The mode a model directory gives (a sequence-classification head: cross-encoder);
    a requested mode the directory cannot run is a ModelError."""
    mode = "cross-encoder" if has_sequence_head else "bi-encoder"
    if requested is not None and requested != mode:
        need = "a *ForSequenceClassification" if requested == "cross-encoder" else "a bare encoder"
        raise ModelError(f"{where}: mode {requested!r} needs {need} model directory")
    return mode


@dataclass
class Ranking:
    """All scored candidates of one request (catalog positions), and how many to return."""

    user_id: object
    candidates: np.ndarray
    scores: np.ndarray
    k: int


class RecommendationPipeline:
    """``pipe(requests)`` -> ``[{"user_id", "items": [{"item_id", "score"}, ...]}]``, best
    first (ties in candidate order). Requests are :class:`~nlpengine_recommendation.request.
    Request` objects (``parse_request`` makes them from records).

    ``items``: the items file (JSONL ``{"item_id", "text"}``); ``interactions``: JSONL
    ``{"user_id", "item_id", "rating" or "label", "timestamp"}`` giving the history of
    requests that name a ``user_id``. ``top_k``: items returned (0: all; a request's ``k``
    wins). ``max_history``: most recent liked items a profile uses (None: all).
    ``exclude_seen``: leave the user's history out of the default candidates (all items).
    ``score``/``normalize``: bi-encoder similarity and L2 normalisation (None: cosine, and
    the model's own Normalize module).
    """

    def __init__(
        self,
        model: str | os.PathLike,
        *,
        items: str | os.PathLike,
        interactions: str | os.PathLike | None = None,
        mode: str | None = None,
        top_k: int = 10,
        max_history: int | None = None,
        exclude_seen: bool = True,
        score: str | None = None,
        normalize: bool | None = None,
        batch_size: int = 32,
        threads: int | None = None,
    ):
        if mode is not None and mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)} or None, got {mode!r}")
        if score is not None and score not in SCORES:
            raise ValueError(f"score must be one of {', '.join(SCORES)} or None, got {score!r}")
        if isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 0:
            raise ValueError(f"top_k must be a non-negative integer, got {top_k!r}")
        self.catalog = ItemCatalog.read(Path(items))
        self.interactions = None if interactions is None else Path(interactions)
        self.histories = (
            {} if interactions is None else user_histories(self.interactions, self.catalog)
        )
        model_dir = Path(model)
        self.model = nlpengine.load(model_dir, threads=threads)
        if not isinstance(self.model, nlpengine.EncoderModel):
            raise ModelError(f"{model_dir}: recommendation needs an encoder model directory")
        head = self.model.head
        if head not in (None, "sequence_classification"):
            raise ModelError(
                f"{model_dir / 'config.json'}: recommendation needs a bare encoder (bi-encoder) "
                f"or a *ForSequenceClassification model (cross-encoder), not head {head!r}"
            )
        self.mode = resolve_mode(mode, head == "sequence_classification", str(model_dir))
        self.top_k = top_k
        self.max_history = max_history
        self.exclude_seen = exclude_seen
        self.score_function = score or "cosine"
        if self.mode == "bi-encoder":
            config = PoolingConfig.from_directory(model_dir)
            if not (model_dir / "modules.json").is_file():
                config = PoolingConfig.from_directory(self.model.directory)
            self.pooling = config
            self.normalize = config.normalize if normalize is None else bool(normalize)
            self.text_batches = TextBatches(self.model, batch_size, config.max_seq_length)
            self.cache = EmbeddingCache(self.catalog.texts, self.embed)
        else:
            self.num_labels = int(self.model.config["num_labels"])
            if self.num_labels not in (1, 2):
                raise ModelError(
                    f"{model_dir / 'config.json'}: a cross-encoder has 1 or 2 labels, "
                    f"got {self.num_labels}"
                )
            self.text_batches = TextBatches(self.model, batch_size)
        self._all_vectors: np.ndarray | None = None

    # -- embeddings (bi-encoder) -----------------------------------------------------------

    def embed(self, texts: list[str]) -> np.ndarray:
        """Pooled (and, per the model, normalised) embeddings of texts, (n, hidden)."""
        out = np.zeros((len(texts), int(self.model.config["hidden_size"])), dtype=np.float32)
        encodings = self.text_batches.encode(texts)
        for rows, output, mask in self.text_batches.run(encodings):
            out[rows] = pool(output.last_hidden_state, mask, self.pooling.mode)
        return l2_normalize(out) if self.normalize else out

    def item_vectors(self) -> np.ndarray:
        """Every catalog item's vector (computed once)."""
        if self._all_vectors is None:
            self._all_vectors = self.cache.vectors(np.arange(len(self.catalog)))
        return self._all_vectors

    # -- requests ----------------------------------------------------------------------------

    def _position(self, key: str, where: str) -> int:
        position = self.catalog.position(key)
        if position is None:
            raise ValueError(f"{where}: item_id {key!r} is not in {self.catalog.path}")
        return position

    def _history(self, request: Request) -> list[tuple[int, float]]:
        if request.history is not None:
            return [(self._position(key, "history"), weight) for key, weight in request.history]
        if request.profile is not None:
            return []
        if self.interactions is None:
            raise ValueError(
                "a request with only a user_id needs an interactions file (--interactions)"
            )
        user = str(request.user_id)
        if user not in self.histories:
            raise ValueError(
                f"user_id {request.user_id!r} has no interactions in {self.interactions}"
            )
        return [(x.item, x.weight) for x in self.histories[user]]

    def _candidates(self, request: Request, seen: set[int]) -> np.ndarray:
        if request.candidates is not None:
            return np.array(
                [self._position(key, "candidates") for key in request.candidates], dtype=np.int64
            )
        everything = np.arange(len(self.catalog), dtype=np.int64)
        if self.exclude_seen and seen:
            return everything[~np.isin(everything, np.fromiter(seen, dtype=np.int64))]
        return everything

    def rank(
        self, requests: list[Request], candidates: list[np.ndarray] | None = None
    ) -> list[Ranking]:
        """Every candidate's score per request (no cut to k); ``candidates`` (catalog
        positions per request) replaces the requests' own."""
        rankings = []
        users: list = []  # per request: liked (item, weight) entries, or the profile text
        for n, request in enumerate(requests):
            history = self._history(request)
            seen = {item for item, _ in history}
            if request.history is None and request.profile is not None:
                users.append(request.profile)
            else:
                liked = profile_items(history, self.max_history)
                if not liked:
                    raise ValueError("the user's history has no item with a positive rating")
                users.append(liked)
            k = self.top_k if request.k is None else request.k
            chosen = self._candidates(request, seen) if candidates is None else candidates[n]
            rankings.append(Ranking(request.user_id, np.asarray(chosen, np.int64), None, k))
        if self.mode == "bi-encoder":
            self._score_bi(rankings, users)
        else:
            self._score_cross(rankings, users)
        return rankings

    def _score_bi(self, rankings: list[Ranking], users: list) -> None:
        profiles = [i for i, user in enumerate(users) if isinstance(user, str)]
        profile_vectors = self.embed([users[i] for i in profiles]) if profiles else None
        user_vectors = np.zeros((len(users), int(self.model.config["hidden_size"])), np.float32)
        for row, i in enumerate(profiles):
            user_vectors[i] = profile_vectors[row]
        for i, user in enumerate(users):
            if isinstance(user, str):
                continue
            items = [item for item, _ in user]
            weights = np.array([weight for _, weight in user], dtype=np.float64)
            vectors = self.cache.vectors(items).astype(np.float64)
            user_vectors[i] = (weights[:, None] * vectors).sum(axis=0) / weights.sum()
        if self.score_function == "cosine":
            user_vectors = l2_normalize(user_vectors)
        for ranking, vector in zip(rankings, user_vectors, strict=True):
            if len(ranking.candidates) == len(self.catalog) or len(ranking.candidates) > 1024:
                # Many candidates: score every item once from the cached matrix.
                scores = self._prepared(self.item_vectors()) @ vector
                ranking.scores = scores[ranking.candidates]
            else:
                vectors = self._prepared(self.cache.vectors(ranking.candidates))
                ranking.scores = vectors @ vector if len(vectors) else np.zeros(0, np.float32)

    def _prepared(self, vectors: np.ndarray) -> np.ndarray:
        return l2_normalize(vectors) if self.score_function == "cosine" else vectors

    def _score_cross(self, rankings: list[Ranking], users: list) -> None:
        pairs, owners = [], []
        for i, (ranking, user) in enumerate(zip(rankings, users, strict=True)):
            if isinstance(user, str):
                text = user
            else:
                text = user_text([self.catalog.texts[item] for item, _ in user])
            for item in ranking.candidates:
                pairs.append((text, self.catalog.texts[item]))
                owners.append(i)
        scores = np.zeros(len(pairs), dtype=np.float32)
        for rows, output, _ in self.text_batches.run(self.text_batches.encode(pairs)):
            logits = np.asarray(output.logits, dtype=np.float32)
            scores[rows] = logits[:, 0] if self.num_labels == 1 else logits[:, 1] - logits[:, 0]
        owners_array = np.asarray(owners, dtype=np.int64)
        for i, ranking in enumerate(rankings):
            ranking.scores = scores[owners_array == i]

    # -- results -----------------------------------------------------------------------------

    def result(self, ranking: Ranking) -> dict:
        order = np.argsort(-ranking.scores, kind="stable")
        if ranking.k:
            order = order[: ranking.k]
        return {
            "user_id": ranking.user_id,
            "items": [
                {"item_id": self.catalog.ids[int(ranking.candidates[j])],
                 "score": float(ranking.scores[j])}
                for j in order
            ],
        }  # fmt: skip

    def __call__(self, requests: list[Request]) -> list[dict]:
        return [self.result(ranking) for ranking in self.rank(list(requests))]

    def __repr__(self) -> str:
        return (
            f"RecommendationPipeline({self.model.directory!r}, mode={self.mode!r}, "
            f"items={len(self.catalog)})"
        )
