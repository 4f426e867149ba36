"""Ranking metrics of the recommendation task on cases computed by hand."""

from __future__ import annotations

import math

import pytest
from nlpengine_recommendation import ranking_metrics

# User A: ranked order is items 0 (-), 1 (+), 2 (-), 3 (+): relevant at ranks 2 and 4.
USER_A = ([0, 1, 0, 1], [0.9, 0.8, 0.7, 0.1])
# User B: ranked order is items 1 (-), 2 (-), 0 (+): relevant at rank 3.
USER_B = ([1, 0, 0], [0.1, 0.5, 0.3])


def test_one_user_by_hand():
    m = ranking_metrics([USER_A], k=2)
    assert m["mrr"] == pytest.approx(1 / 2)
    assert m["recall@2"] == pytest.approx(1 / 2)
    dcg = 1 / math.log2(3)  # the relevant item at rank 2
    idcg = 1 + 1 / math.log2(3)  # both relevant items at ranks 1 and 2
    assert m["ndcg@2"] == pytest.approx(dcg / idcg)
    # AUC: of the 4 (relevant, irrelevant) pairs only 0.8 > 0.7 is ordered right.
    assert m["auc"] == pytest.approx(1 / 4)
    assert m["users"] == 1


def test_means_over_users_and_users_left_out():
    m = ranking_metrics([USER_A, USER_B, ([0, 0], [1.0, 2.0]), ([1, 1], [1.0, 2.0])], k=2)
    assert m["users"] == 3 and m["users_without_relevant"] == 1
    assert m["mrr"] == pytest.approx((1 / 2 + 1 / 3 + 1) / 3)
    assert m["recall@2"] == pytest.approx((1 / 2 + 0 + 1) / 3)
    ndcg_a = (1 / math.log2(3)) / (1 + 1 / math.log2(3))
    assert m["ndcg@2"] == pytest.approx((ndcg_a + 0 + 1) / 3)
    # AUC only where a user has both kinds: A (1/4) and B (0: its positive is last).
    assert m["users_with_auc"] == 2
    assert m["auc"] == pytest.approx((1 / 4 + 0) / 2)


def test_k_cuts_recall_and_ndcg():
    m = ranking_metrics([USER_A], k=10)
    assert m["recall@10"] == pytest.approx(1.0)
    dcg = 1 / math.log2(3) + 1 / math.log2(5)
    assert m["ndcg@10"] == pytest.approx(dcg / (1 + 1 / math.log2(3)))


def test_graded_relevance_is_the_ndcg_gain():
    m = ranking_metrics([([3, 1], [0.1, 0.9])], k=2)
    assert m["ndcg@2"] == pytest.approx((1 + 3 / math.log2(3)) / (3 + 1 / math.log2(3)))


def test_bad_arguments():
    with pytest.raises(ValueError, match="same|one length"):
        ranking_metrics([([1, 0], [0.5])])
    with pytest.raises(ValueError, match="no user"):
        ranking_metrics([([0, 0], [0.5, 0.1])])
    with pytest.raises(ValueError, match="k must"):
        ranking_metrics([USER_A], k=0)
