"""The study's tables from tidy rows (evofool.tables)."""

import json

import numpy as np
import pandas as pd
import pytest
import torch

from evofool import metrics, tables
from evofool.tables import (
    ascent_table,
    encoding_tests,
    fitness_curves,
    rule_benchmarks,
    summary_table,
)


def _elites(direct, cppn):
    rows = []
    for enc, values in (("direct", direct), ("cppn", cppn)):
        for i, v in enumerate(values):
            rows.append(
                dict(
                    dataset="mnist",
                    net="lenet",
                    model_seed=0,
                    encoding=enc,
                    insertion="all",
                    run=i // 10,
                    **{"class": i % 10},
                    confidence=v,
                    generation_found=1,
                    excluded=False,
                )
            )
    return pd.DataFrame(rows)


def _bench(path, seconds, rss):
    path.parent.mkdir(parents=True, exist_ok=True)
    header = "s\th:m:s\tmax_rss\tmax_vms\tmax_uss\tmax_pss\tio_in\tio_out\tmean_load\tcpu_time\n"
    path.write_text(header + f"{seconds}\t0:00:01\t{rss}\t1\t1\t1\t0\t0\t50\t{seconds / 2}\n")


def test_encoding_test_detects_a_difference_and_counts_classes():
    rng = np.random.default_rng(0)
    elites = _elites(rng.uniform(0.2, 0.5, 30), rng.uniform(0.991, 1.0, 30))
    tests = encoding_tests(elites).iloc[0]
    # Three runs each, fully separated: the run-level test gives its smallest p, 2 / C(6, 3);
    # the cell-level test, which takes 30 cells as independent, a far smaller one.
    assert (tests["runs_a"], tests["runs_b"], tests["cells_a"]) == (3, 3, 30)
    assert tests["p_value"] == pytest.approx(0.1) and tests["p_min"] == pytest.approx(0.1)
    assert tests["cell_p_value"] < 1e-6 and tests["run_difference"] < -40
    summary = summary_table(elites).set_index("encoding")
    assert (
        summary.loc["cppn", "classes_at_99"] == 10 and summary.loc["direct", "classes_at_99"] == 0
    )


def test_excluded_classes_do_not_count():
    elites = _elites([0.1] * 10, [0.2] * 10)
    elites.loc[elites["class"] == 9, ["excluded", "confidence"]] = [True, np.nan]
    assert (summary_table(elites)["classes"] == 9).all()


def test_ascent_table_rows():
    result = {
        "classes": ["0", "1"],
        "confidences": torch.tensor([0.9999, 0.5]),
        "steps_to": torch.tensor([[3, 5, 9], [-1, -1, -1]]),
        "thresholds": [0.99, 0.999, 0.9999],
        "steps": 20,
        "decay": 0.0,
    }
    table = ascent_table(
        {"results/fooling/dataset=mnist/net=lenet/seed=0/gradient_ascent.pt": result}
    )
    assert table["step_to_99.99"].tolist() == [9, -1]
    assert table["net"].tolist() == ["lenet", "lenet"]


def test_round_statistics_compare_round_one_with_each_later_round():
    rng = np.random.default_rng(0)
    elites = pd.concat(
        pd.DataFrame(
            {
                "round": r,
                "run": np.repeat([0, 1], 5),
                "class": list("abcde") * 2,
                "confidence": rng.uniform(lo, lo + 0.01, 10),
            }
        )
        for r, lo in [(1, 0.99), (2, 0.99), (3, 0.5)]
    )
    tests = tables.round_tests(elites)
    assert tests["round"].tolist() == [2, 3]
    # Two evaluation runs per round: the run-level p cannot go below 2 / C(4, 2) = 1/3.
    assert tests.loc[1, "p_value"] == pytest.approx(1 / 3) == tests.loc[1, "p_min"]
    assert tests.loc[1, "cell_p_value"] < 0.001 < tests.loc[0, "cell_p_value"]
    assert tests.loc[1, "cell_u"] == 100.0  # every round-1 value beats every round-3 value
    rounds = pd.DataFrame({"round": [1, 2, 3], "clean_accuracy": [0.9, 0.9, 0.9]})
    table = tables.round_table(rounds, elites)
    assert table["eval_runs"].tolist() == [2, 2, 2]
    assert table["classes_at_99"].tolist() == [5.0, 5.0, 0.0]
    assert 99 < table.loc[0, "median_confidence"] < 100


def test_rule_benchmarks_sum_jobs_per_rule(tmp_path):
    _bench(tmp_path / "train_model" / "dataset=a" / "net=b" / "seed=0.tsv", 10.0, 500)
    _bench(tmp_path / "train_model" / "dataset=a" / "net=b" / "seed=1.tsv", 30.0, 700)
    _bench(tmp_path / "tabulate_fooling.tsv", 2.0, 100)
    table = rule_benchmarks(tmp_path).set_index("rule")
    assert table.loc["train_model", "jobs"] == 2
    assert table.loc["train_model", "total_seconds"] == 40.0
    assert table.loc["train_model", "median_seconds"] == 20.0
    assert table.loc["train_model", "peak_rss_mb"] == 700.0
    assert table.loc["train_model", "cpu_seconds"] == 20.0
    assert list(table.index) == ["train_model", "tabulate_fooling"]  # slowest first
    assert rule_benchmarks(tmp_path / "none").empty


def test_fitness_curves_keep_successful_attacks_only():
    frame = pd.DataFrame(
        {"success": [True, False, True], "fitness_curve": [json.dumps([0.9, 0.4, None])] * 3}
    )
    curves = fitness_curves(frame)
    assert curves.shape == (2, 3) and np.isnan(curves[0, 2])


def test_fitness_curves_of_a_table_without_successes_are_empty_but_budget_wide():
    frame = pd.DataFrame(
        {"success": [False, False], "generations": [4, 4], "fitness_curve": ["[0.9]"] * 2}
    )
    assert fitness_curves(frame).shape == (0, 5)


# --- search methods ---------------------------------------------------------------------------


def _method_attacks(protocol, pixels, success, queries, budget, stopped=None, ids=None):
    n = len(success)
    return pd.DataFrame(
        {
            "dataset": "mnist",
            "net": "lenet",
            "model_seed": 0,
            "pixels": pixels,
            "protocol": protocol,
            "image_id": list(range(n)) if ids is None else ids,
            "success": success,
            "stopped": success if stopped is None else stopped,
            "queries": queries,
            "model_queries": queries,
            "budget": budget,
            "popsize": 10,
            "generations": 9,
            "confidence": 0.8,
            "distortion": 100.0,
            "stop": "misclassified",
        }
    )


def test_success_within_counts_early_stops_at_their_query_and_the_rest_at_the_budget():
    frame = _method_attacks(
        "nontargeted",
        1,
        success=[True, True, False, True],
        stopped=[True, True, False, False],  # the last succeeded without an early stop
        queries=[5, 50, 100, 100],
        budget=100,
    )
    assert metrics.success_within(frame, 4).tolist() == [False, False, False, False]
    assert metrics.success_within(frame, 5).tolist() == [True, False, False, False]
    assert metrics.success_within(frame, 99).tolist() == [True, True, False, False]
    assert metrics.success_within(frame, 100).tolist() == [True, True, False, True]
    grid = metrics.success_within(frame, np.array([4, 5, 99, 100]))
    assert grid.sum(axis=0).tolist() == [0, 1, 2, 3]


def test_search_methods_table_gives_own_and_equal_budget_rates():
    de = _method_attacks("nontargeted", 1, [True, True, False, False], [10, 500, 2100, 2100], 2100)
    corners = _method_attacks("corners", 1, [True, False, True, False], [7, 1568, 3, 1568], 1568)
    rs = _method_attacks("sparse_rs", 1, [True, True, True, False], [1600, 20, 2000, 2100], 2100)
    table = tables.search_methods_table([de, corners, rs]).set_index("method")
    assert list(table.index) == ["de", "corners", "sparse_rs"]
    assert table["budget"].tolist() == [2100, 1568, 2100]
    assert (table["equal_budget"] == 1568).all()
    assert table["rate"].tolist() == [50.0, 50.0, 75.0]
    # Within 1,568 queries: DE's 10 and 500, corners' 7 and 3, Sparse-RS's 20 only.
    assert table["equal_rate"].tolist() == [50.0, 50.0, 25.0]
    assert table.loc["sparse_rs", "equal_low"] < 25.0 < table.loc["sparse_rs", "equal_high"]
    assert table["n"].tolist() == [4, 4, 4]
    # Against DE image by image: Sparse-RS fools images 2 (only it) and 0, 1 (both).
    assert np.isnan(table.loc["de", "mcnemar_p"])
    assert table.loc["sparse_rs", ["only_method", "only_de"]].tolist() == [1, 0]
    assert table.loc["sparse_rs", "minus_de"] == 25.0
    assert table.loc["sparse_rs", "mcnemar_p"] == 1.0
    assert table.loc["corners", ["only_method", "only_de"]].tolist() == [1, 1]


def test_one_pixel_ceiling_cross_tabulates_each_method_against_exhaustive_search():
    corners = _method_attacks("corners", 1, [True, True, False, False], [3, 9, 1568, 1568], 1568)
    de1 = _method_attacks("nontargeted", 1, [True, False, True, False], [5] * 4, 2100)
    de3 = _method_attacks("nontargeted", 3, [True, True, True, False], [5] * 4, 2100)
    rnd = _method_attacks("random", 1, [False, True], [5, 5], 2100, ids=[1, 7])  # image 7: none
    table = tables.one_pixel_ceiling_table([corners, de1, de3, rnd])
    rows = {(r.method, r.pixels): r for r in table.itertuples()}
    de = rows[("de", 1)]
    assert (de.images, de.ceiling_images, de.ceiling_share) == (4, 2, 50.0)
    assert (de.success_inside, de.success_outside) == (1, 1)
    assert (de.failure_inside, de.failure_outside) == (1, 1)
    assert de.ceiling_reached == 50.0
    assert rows[("de", 3)].success_inside == 2 and rows[("de", 3)].ceiling_reached == 100.0
    r = rows[("random", 1)]
    assert (r.images, r.ceiling_images, r.success_inside, r.failure_inside) == (1, 1, 0, 1)
    exhaustive = rows[("corners", 1)]
    assert exhaustive.ceiling_reached == 100.0 and exhaustive.success_outside == 0
    assert set(table["ceiling_budget"]) == {1568}
    # Another stop rule proves nothing where it fails: no ceiling, but the columns stay.
    empty = tables.one_pixel_ceiling_table([corners.assign(stop="true_prob"), de1])
    assert empty.empty and list(empty.columns) == tables.CEILING_COLUMNS


def test_success_against_queries_rises_to_each_methods_rate_at_its_budget():
    de = _method_attacks("nontargeted", 3, [True, True, False, False], [10, 500, 2100, 2100], 2100)
    corners = _method_attacks("corners", 3, [True, False, True, False], [7, 2100, 3, 2100], 2100)
    curves = tables.success_against_queries([de, corners])
    for method, frame in curves.groupby("method"):
        assert (np.diff(frame["success_rate"]) >= 0).all(), method
        assert frame["queries"].iloc[-1] == 2100
        assert frame["success_rate"].iloc[-1] == 50.0
    first = curves[curves["method"] == "corners"].set_index("queries")["success_rate"]
    assert first.loc[3] == 25.0 and first.loc[1] == 0.0


def test_table_vii_sets_non_targeted_1_beside_random_search_as_the_paper_does():
    # Non-targeted 1 (an image fooled by one of its targeted attacks) and the true non-targeted
    # run (non-targeted 2) differ: images 0-3 fall to some target, only image 0 to the
    # non-targeted run. Random search fools image 0 and 1.
    targeted = pd.concat(
        [
            _method_attacks("targeted", 1, [i < 4, False], [9, 2100], 2100, ids=[i, i])
            for i in range(5)
        ]
    )
    de = _method_attacks("nontargeted", 1, [True, False, False, False, False], [9] * 5, 2100)
    rnd = _method_attacks(
        "random", 1, [True, True, False, False, False], [9, 900] + [2100] * 3, 2100
    )
    row = tables.de_vs_random_table([targeted, de, rnd]).iloc[0]
    assert row["nontargeted1_rate"] == 80.0 and row["de_rate"] == 20.0
    assert row["nontargeted1_minus_random"] == 40.0 and row["difference"] == -20.0
    assert row["random_budget"] == row["de_budget"] == 2100
    assert row["random_at_de_budget_rate"] == row["random_rate"] == 40.0
    # The paper comparison takes the like-for-like difference.
    from evofool import comparison

    side = comparison.side_by_side(
        {
            "de_vs_random": tables.de_vs_random_table(
                [t.assign(dataset="cifar10", net="allconv") for t in (targeted, de, rnd)]
            )
        }
    )
    minus = side[(side["quantity"] == "de_minus_random") & (side["net"] == "allconv")].iloc[0]
    assert minus["ours"] == 40.0
    assert minus["our_setting"].startswith("non-targeted 1 (the paper's DE figure) minus random")


def test_random_search_is_read_at_de_budget_and_at_its_own():
    de = _method_attacks("nontargeted", 1, [False] * 4, [2100] * 4, 2100)
    # Budget 4,200 (the paper's "80 000" reading against DE's 40,400): two successes, one of
    # them after DE's budget.
    rnd = _method_attacks("random", 1, [True, True, False, False], [300, 3000, 4200, 4200], 4200)
    row = tables.de_vs_random_table([de, rnd]).iloc[0]
    assert (row["de_budget"], row["random_budget"]) == (2100, 4200)
    assert row["random_rate"] == 50.0 and row["random_at_de_budget_rate"] == 25.0
