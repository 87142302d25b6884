"""Threshold selection and the eligibility score (synthetic numbers, no model)."""

from __future__ import annotations

import numpy as np
import pytest

from fittingroom.models.eligibility.model import eligibility_scores, select_threshold


def test_threshold_reaches_precision_with_best_recall() -> None:
    rng = np.random.default_rng(0)
    pos = rng.uniform(0.5, 1.0, 200)
    neg = rng.uniform(0.0, 0.7, 800)
    scores = np.r_[pos, neg]
    positive = np.r_[np.ones(200, bool), np.zeros(800, bool)]
    choice = select_threshold(scores, positive, 0.99)
    assert choice.reached
    pred = scores >= choice.threshold
    precision = (pred & positive).sum() / pred.sum()
    recall = (pred & positive).sum() / positive.sum()
    assert precision >= 0.99
    assert choice.precision == pytest.approx(precision)
    assert choice.recall == pytest.approx(recall)
    # brute force: no threshold reaches 0.99 precision with a higher recall
    for t in np.unique(scores):
        p = scores >= t
        if (p & positive).sum() / p.sum() >= 0.99:
            assert (p & positive).sum() <= (pred & positive).sum()


def test_threshold_perfectly_separable_takes_all_positives() -> None:
    scores = np.array([0.9, 0.8, 0.7, 0.3, 0.2])
    positive = np.array([True, True, True, False, False])
    choice = select_threshold(scores, positive, 0.99)
    assert choice.threshold == pytest.approx(0.7)
    assert choice.recall == 1.0 and choice.precision == 1.0


def test_ties_are_never_split() -> None:
    # a negative tied with a positive at 0.8: cutting at 0.8 takes both
    scores = np.array([0.9, 0.8, 0.8, 0.1])
    positive = np.array([True, True, False, True])
    choice = select_threshold(scores, positive, 0.99)
    assert choice.threshold == pytest.approx(0.9)
    assert choice.recall == pytest.approx(1 / 3)


def test_unreachable_precision_returns_most_precise() -> None:
    scores = np.array([0.9, 0.8, 0.7])
    positive = np.array([False, True, True])
    choice = select_threshold(scores, positive, 0.99)
    assert not choice.reached
    assert choice.precision == pytest.approx(2 / 3)


def test_no_positive_raises() -> None:
    with pytest.raises(ValueError, match="no positive"):
        select_threshold(np.array([0.1, 0.2]), np.array([False, False]))
    with pytest.raises(ValueError):
        select_threshold(np.array([0.1, 0.2]), np.array([True]))


def test_eligibility_score_gates_on_argmax() -> None:
    pt = np.array([[0.9, 0.1], [0.4, 0.6], [0.8, 0.2]])
    cat = np.array([[0.7, 0.2, 0.1], [0.9, 0.05, 0.05], [0.3, 0.1, 0.6]])
    s = eligibility_scores(pt, ["product_only", "on_model"], cat, ["top", "bottom", "footwear"])
    assert s[0] == pytest.approx(0.9 * 0.9)
    assert s[1] == 0.0  # photo type arg-max is on_model
    assert s[2] == 0.0  # category arg-max is footwear
