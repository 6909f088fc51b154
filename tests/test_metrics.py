import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from evofool.metrics import (
    mann_whitney,
    nontargeted_from_targeted,
    pair_counts,
    reachable_targets,
    summarize,
    wilson_interval,
)


def test_wilson_interval_known_values():
    # Known answer: 8 of 10 -> (0.4902, 0.9433) (Wilson 1927; e.g. Newcombe 1998, Table I).
    lo, hi = wilson_interval(8, 10)
    assert lo == pytest.approx(0.4902, abs=1e-4) and hi == pytest.approx(0.9433, abs=1e-4)
    lo, hi = wilson_interval(0, 20)
    assert lo == 0.0 and hi == pytest.approx(0.1611, abs=1e-4)
    assert all(math.isnan(v) for v in wilson_interval(0, 0))


def test_wilson_interval_agrees_with_scipy():
    res = stats.binomtest(37, 120).proportion_ci(confidence_level=0.95, method="wilson")
    lo, hi = wilson_interval(37, 120)
    assert lo == pytest.approx(res.low) and hi == pytest.approx(res.high)


def _targeted():
    # Image 0 reaches targets 1 and 2, image 1 reaches none, image 2 reaches target 0.
    rows = [
        (0, 0, 1, True, 1, 0.7, 100, 40.0),
        (0, 0, 2, True, 2, 0.6, 300, 60.0),
        (1, 1, 0, False, 1, 0.1, 400, 10.0),
        (1, 1, 2, False, 1, 0.2, 400, 10.0),
        (2, 2, 0, True, 0, 0.9, 200, 80.0),
        (2, 2, 1, False, 2, 0.3, 400, 5.0),
    ]
    cols = [
        "image_id",
        "label",
        "target",
        "success",
        "final_label",
        "confidence",
        "queries",
        "distortion",
    ]
    return pd.DataFrame(rows, columns=cols)


def test_nontargeted_from_targeted_is_any_success_per_image():
    assert nontargeted_from_targeted(_targeted()).tolist() == [True, False, True]


def test_reachable_targets_shares():
    shares = reachable_targets(_targeted(), 3)
    assert shares.tolist() == pytest.approx([1 / 3, 1 / 3, 1 / 3])


def test_pair_counts():
    m = pair_counts(_targeted(), 3)
    expected = np.zeros((3, 3), int)
    expected[0, 1] = expected[0, 2] = expected[2, 0] = 1
    assert np.array_equal(m, expected)


def test_summarize_uses_successes_for_confidence_and_distortion():
    s = summarize(_targeted())
    assert s["rate"] == pytest.approx(50.0) and s["n"] == 6
    assert s["confidence"] == pytest.approx(100 * (0.7 + 0.6 + 0.9) / 3)
    assert s["avg_evaluations"] == pytest.approx(1800 / 6)
    assert s["avg_distortion"] == pytest.approx(60.0)
    assert s["low"] < 50 < s["high"]


def test_mann_whitney_separates_shifted_samples():
    rng = np.random.default_rng(0)
    a, b = rng.normal(0, 1, 40), rng.normal(2, 1, 40)
    assert mann_whitney(a, b)["p_value"] < 1e-6
    assert mann_whitney(a, a)["p_value"] > 0.9
