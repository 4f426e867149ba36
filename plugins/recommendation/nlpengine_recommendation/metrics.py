"""Ranking metrics per user, averaged over users: NDCG@k and AUC from scikit-learn
(``ndcg_score``, ``roc_auc_score``), Recall@k and MRR from the ranked list.

Each user contributes one (relevance, scores) pair over their candidates: ``relevance`` > 0
marks a relevant item (its value is the gain NDCG uses), ``scores`` rank the candidates,
best first. Recall@k and MRR rank by score with ties in candidate order (the order the
pipeline returns); scikit-learn's NDCG averages over tied scores. Users without a relevant
candidate are left out (counted in ``users_without_relevant``); AUC is averaged over the
users that also have an irrelevant candidate.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np


def _user_metrics(relevance: np.ndarray, scores: np.ndarray, k: int) -> dict:
    from sklearn.metrics import ndcg_score, roc_auc_score

    relevant = relevance > 0
    order = np.argsort(-scores, kind="stable")
    ranks = np.flatnonzero(relevant[order])  # 0-based ranks of the relevant items
    if len(scores) > 1:
        ndcg = float(ndcg_score(relevance[None, :], scores[None, :], k=k))
    else:
        ndcg = 1.0
    auc = None
    if 0 < relevant.sum() < len(relevant):
        auc = float(roc_auc_score(relevant, scores))
    return {
        "ndcg": ndcg,
        "recall": float((ranks < k).sum() / relevant.sum()),
        "mrr": float(1.0 / (ranks[0] + 1)),
        "auc": auc,
    }


def ranking_metrics(users: Iterable[tuple[object, object]], k: int = 10) -> dict:
    """``{"ndcg@k", "recall@k", "mrr", "auc", "users", "users_without_relevant",
    "users_with_auc"}`` over ``(relevance, scores)`` pairs, one per user."""
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ValueError(f"k must be a positive integer, got {k!r}")
    per_user = []
    without = 0
    for relevance, scores in users:
        relevance = np.asarray(relevance, dtype=np.float64)
        scores = np.asarray(scores, dtype=np.float64)
        if relevance.shape != scores.shape or relevance.ndim != 1:
            raise ValueError(
                f"relevance and scores must be 1-d of one length, got {relevance.shape} "
                f"and {scores.shape}"
            )
        if np.any(relevance < 0):
            raise ValueError("relevance must be non-negative")
        if not np.any(relevance > 0):
            without += 1
            continue
        per_user.append(_user_metrics(relevance, scores, k))
    if not per_user:
        raise ValueError("no user has a relevant candidate: nothing to score")
    aucs = [m["auc"] for m in per_user if m["auc"] is not None]
    return {
        f"ndcg@{k}": float(np.mean([m["ndcg"] for m in per_user])),
        f"recall@{k}": float(np.mean([m["recall"] for m in per_user])),
        "mrr": float(np.mean([m["mrr"] for m in per_user])),
        "auc": float(np.mean(aucs)) if aucs else None,
        "users": len(per_user),
        "users_without_relevant": without,
        "users_with_auc": len(aucs),
    }
