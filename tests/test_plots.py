"""Figures with many classes (ImageNet's 1,000) show the top ones and say so."""

import numpy as np
import pandas as pd
import pytest
import torch

from evofool import metrics, plots


def test_top_classes_keeps_the_highest_in_class_order_and_all_when_few():
    assert plots.top_classes([3.0, 1.0, 2.0]).tolist() == [0, 1, 2]
    scores = np.zeros(1000)
    scores[[900, 5, 40]] = [3.0, 2.0, np.nan]
    keep = plots.top_classes(scores, limit=4)
    assert keep.tolist() == [0, 1, 5, 900]  # NaN ranks last, ties keep the lower index


def test_heatmap_of_many_classes_shows_the_busiest_pairs():
    n = 1000
    attacks = pd.DataFrame(
        {
            "label": [10, 10, 500, 700, 3],
            "target": [-1] * 5,
            "final_label": [20, 30, 10, 1, 3],
            "success": [True, True, True, False, False],
        }
    )
    counts = metrics.pair_counts(attacks, n)
    attacked = metrics.attacked_per_class(attacks, n)
    assert attacked[[10, 500, 700, 3]].tolist() == [2, 1, 1, 1] and attacked.sum() == 5
    classes = [f"c{i}" for i in range(n)]
    ax = plots.pair_heatmap(counts, classes, title="t", attacked=attacked)
    shown = [t.get_text() for t in ax.get_yticklabels()]
    assert len(shown) == plots.MAX_CLASSES
    assert {"c10", "c20", "c30", "c500", "c700", "c3"} <= set(shown)
    assert "20 of 1000 classes" in ax.get_title()


def test_class_image_grid_of_many_classes_picks_the_most_confident():
    conf = torch.full((2, 50), 0.1)
    conf[:, 7] = 0.99
    conf[0, 30] = float("nan")
    images = torch.rand(2, 50, 1, 8, 8)
    fig = plots.class_image_grid(images, conf, ["run 0", "run 1"], [f"k{i}" for i in range(50)])
    titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
    assert len(titles) == plots.MAX_CLASSES and "k7" in titles
    assert "20 of 50 classes" in fig._suptitle.get_text()
    texts = [ax.get_xlabel() for ax in fig.axes]
    assert texts.count("99.00%") == 2


@pytest.mark.parametrize("n_classes", [10, 300])
def test_class_confidence_draws_bars_or_ranked_curves(n_classes):
    rows = [
        {
            "run": r,
            "class": k,
            "confidence": (k % 7) / 7,
            "excluded": False,
            "encoding": e,
            "insertion": "all",
        }
        for r in range(2)
        for k in range(n_classes)
        for e in ("direct", "cppn")
    ]
    ax = plots.class_confidence(pd.DataFrame(rows), [str(k) for k in range(n_classes)])
    if n_classes > plots.MAX_CLASSES:
        assert len(ax.lines) >= 2 and ax.get_xlabel() == "class rank"
        ranked = ax.lines[0].get_ydata()
        assert np.all(np.diff(ranked) <= 0) and ranked[0] == pytest.approx(100 * 6 / 7)
    else:
        assert ax.get_xlabel() == "class"
