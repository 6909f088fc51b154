import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from evofool import metrics
from evofool.metrics import (
    PERMUTATIONS,
    mann_whitney,
    nontargeted_from_targeted,
    pair_counts,
    reachable_targets,
    run_level_test,
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
    # AvgEvaluation over successes, as the paper defines it; the protocol's cost over all.
    ok = _targeted()[_targeted()["success"]]
    assert s["avg_evaluations"] == pytest.approx(ok["queries"].mean())
    assert s["avg_evaluations_all"] == pytest.approx(1800 / 6)
    assert s["avg_evaluations"] != s["avg_evaluations_all"]
    assert s["avg_distortion"] == pytest.approx(60.0)
    assert s["low"] < 50 < s["high"]


def test_mann_whitney_separates_shifted_samples():
    rng = np.random.default_rng(0)
    a, b = rng.normal(0, 1, 40), rng.normal(2, 1, 40)
    assert mann_whitney(a, b)["p_value"] < 1e-6
    assert mann_whitney(a, a)["p_value"] > 0.9


def test_mcnemar_matches_the_exact_binomial_test():
    # 10 pairs only the first method wins, 2 only the second: 2 * P(X <= 2), X ~ B(12, 1/2).
    assert metrics.mcnemar_p(10, 2) == pytest.approx(2 * (1 + 12 + 66) / 2**12)
    for first, second in [(0, 0), (3, 3), (0, 7), (25, 11), (1, 40)]:
        expected = stats.binomtest(first, first + second, 0.5).pvalue if first + second else 1.0
        assert metrics.mcnemar_p(first, second) == pytest.approx(expected)
        assert metrics.mcnemar_p(second, first) == pytest.approx(expected)


def test_paired_interval_matches_a_published_worked_example():
    # Altman, Machin, Bryant and Gardner, Statistics with Confidence (2nd ed., 2000), chapter 6:
    # 41 pairs, 14 positive on both, 5 on the first only, none on the second only; Newcombe's
    # method 10 gives 0.0115 to 0.2265 for the difference 5/41 = 0.122.
    low, high = metrics.paired_difference_interval(14, 5, 0, 22)
    assert (round(low, 4), round(high, 4)) == (0.0115, 0.2265)
    assert metrics.mcnemar_p(5, 0) == pytest.approx(2 / 2**5)


def test_paired_interval_when_every_pair_agrees_is_the_wilson_half_width():
    # Ten pairs, all won by both: no difference, and the interval is symmetric with half-width
    # 1 - 10 / (10 + z^2), the distance of 10/10 from its Wilson lower limit.
    z = stats.norm.ppf(0.975)
    low, high = metrics.paired_difference_interval(10, 0, 0, 0)
    assert high == pytest.approx(1 - 10 / (10 + z**2)) and low == pytest.approx(-high)


def test_paired_interval_holds_the_difference_and_flips_with_the_order():
    for counts in [(14, 5, 0, 22), (3, 9, 2, 6), (0, 4, 1, 0), (20, 0, 6, 14)]:
        both, first, second, neither = counts
        n = sum(counts)
        low, high = metrics.paired_difference_interval(*counts)
        assert -1 <= low <= (first - second) / n <= high <= 1
        swapped = metrics.paired_difference_interval(both, second, first, neither)
        assert swapped == pytest.approx((-high, -low))


def test_paired_interval_covers_the_true_difference_about_95_percent_of_the_time():
    # Correlated pairs: P(both) 0.45, P(first only) 0.2, P(second only) 0.1, P(neither) 0.25;
    # the true difference is 0.1. Newcombe's method 10 is close to nominal at n = 60.
    rng = np.random.default_rng(0)
    cells = rng.multinomial(60, [0.45, 0.2, 0.1, 0.25], size=2000)
    hits = 0
    for counts in cells:
        low, high = metrics.paired_difference_interval(*map(int, counts))
        hits += low <= 0.1 <= high
    assert 0.93 <= hits / 2000 <= 0.99


def test_paired_comparison_pairs_the_items_both_methods_attacked():
    first = pd.Series([True, True, False, True, False], index=[1, 2, 3, 4, 5])
    second = pd.Series([False, True, False, True], index=[2, 3, 4, 6])  # 6 only here
    out = metrics.paired_comparison(first, second)
    # Items 2, 3 and 4 are in both: the first alone wins 2 and 4, the second alone wins 3.
    assert out["paired_items"] == 3
    assert (out["first_only"], out["second_only"]) == (2, 1)
    assert out["paired_difference"] == pytest.approx(100 / 3)
    assert out["mcnemar_p"] == 1.0  # 2 * P(X <= 1), X ~ B(3, 1/2) = 1


# --- inference at the level of runs -----------------------------------------------------------


def _null_with_run_effect(rng, runs, cells, run_sd):
    """Two groups of runs with no difference between the groups, but a random effect per run."""
    groups = []
    for _ in range(2):
        effect = rng.normal(0, run_sd, runs)
        groups.append(effect[:, None] + rng.normal(0, 1, (runs, cells)))
    return groups


def test_run_level_test_holds_its_level_where_the_cell_level_test_does_not():
    rng = np.random.default_rng(0)
    trials, alpha = 300, 0.05
    run_rejects = cell_rejects = 0
    for _ in range(trials):
        a, b = _null_with_run_effect(rng, runs=6, cells=10, run_sd=0.6)
        run_rejects += run_level_test(np.median(a, 1), np.median(b, 1))["p_value"] <= alpha
        cell_rejects += mann_whitney(a.ravel(), b.ravel())["p_value"] <= alpha
    # Binomial(300, 0.05) stays below 0.05 + 0.035 with probability > 0.99.
    assert run_rejects / trials <= alpha + 0.035
    assert cell_rejects / trials > 0.15  # pseudo-replication: the cells are not independent


def test_run_level_test_rejects_a_clear_difference_and_states_its_floor():
    rng = np.random.default_rng(1)
    a = rng.normal(0, 0.1, 6)
    test = run_level_test(a, a + 1.0)
    assert test["p_value"] == pytest.approx(2 / math.comb(12, 6))
    assert test["p_min"] == pytest.approx(2 / math.comb(12, 6))
    assert test["run_difference"] == pytest.approx(-1.0)
    four = run_level_test([1, 2, 3, 4], [5, 6, 7, 8])
    assert four["p_min"] == pytest.approx(0.0286, abs=1e-4) == four["p_value"]
    many = run_level_test(np.arange(30.0), np.arange(30.0) + 100)  # too many splits: sampled
    assert many["p_min"] == pytest.approx(2 / (PERMUTATIONS + 1))


def test_run_level_test_enumerates_splits_as_scipy_does_and_takes_single_runs():
    rng = np.random.default_rng(3)
    for a, b in [(rng.normal(0, 1, 5), rng.normal(0.5, 1, 4)), ([1.0, 2, 2, 3], [2.0, 2, 5])]:

        def difference(x, y, axis):
            return np.mean(x, axis=axis) - np.mean(y, axis=axis)

        expected = stats.permutation_test(
            (np.asarray(a), np.asarray(b)), difference, vectorized=True, n_resamples=np.inf
        ).pvalue
        assert run_level_test(a, b)["p_value"] == pytest.approx(expected)
    # One run per group (the ImageNet runs of a small config): the test exists but can say
    # nothing, p = 1 at its floor of 1.
    one = run_level_test([0.2], [0.9])
    assert one["p_value"] == 1.0 and one["p_min"] == 1.0
    assert run_level_test([0.2], [0.9, 0.95, 0.99])["p_min"] == pytest.approx(2 / 4)
