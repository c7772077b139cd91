"""Which candidates become machine labels: threshold, per-round cap, empty-share bound."""

from __future__ import annotations

import numpy as np

from samdsk.selection import LabelCounts, select


def test_threshold_and_cap_take_the_best_ranked() -> None:
    ranked = [(0.97, False), (0.95, False), (0.91, False), (0.80, False)]
    assert select(ranked, threshold=0.9) == [0, 1, 2]
    assert select(ranked, threshold=0.9, max_new=2) == [0, 1]
    assert select(ranked, threshold=0.99) == []


def test_empty_labels_do_not_outgrow_their_share_among_held_labels() -> None:
    # Half the 10 held labels are empty: bound (5 + 1) / (10 + 2) = 0.5.
    held = LabelCounts(labels=10, empty=5)
    ranked = [(1.0, True)] * 6 + [(0.95, False)] * 2
    chosen = select(ranked, threshold=0.9, held=held)
    empty = [p for p in chosen if ranked[p][1]]
    assert chosen[-2:] == [6, 7]  # every non-empty one is kept
    assert (5 + len(empty)) / (10 + len(chosen)) <= 0.5
    assert empty == [0, 1]  # the best-ranked empty ones: (5 + 2) / 14 = 0.5
    assert select(ranked, threshold=0.9) == list(range(8))  # no bound without held counts


def test_no_empty_label_held_allows_almost_none() -> None:
    held = LabelCounts(labels=70, empty=0)  # bound 1 / 72
    ranked = [(0.99, True), (0.98, False), (0.97, True)]
    assert select(ranked, threshold=0.9, held=held) == [0, 1]  # 1 of 72 labels empty


def test_dropped_empty_ones_leave_room_under_the_cap_for_others() -> None:
    held = LabelCounts(labels=4, empty=0)  # bound 1 / 6
    ranked = [(1.0, True), (1.0, True), (0.95, False), (0.93, False)]
    assert select(ranked, threshold=0.9, max_new=3, held=held) == [0, 2, 3]


def test_counts_of_masks() -> None:
    masks = [np.zeros((4, 4), np.uint8), np.eye(4, dtype=np.uint8), np.zeros((4, 4), bool)]
    counts = LabelCounts.of(masks)
    assert (counts.labels, counts.empty) == (3, 2)
    assert counts.empty_share_bound == 3 / 5


def test_never_passes_over_every_empty_annotation() -> None:
    ranked = [(1.0, True), (0.97, False), (0.95, True), (0.93, False)]
    assert select(ranked, threshold=0.9, allow_empty=False) == [1, 3]
    assert select(ranked, threshold=0.9, max_new=1, allow_empty=False) == [1]
