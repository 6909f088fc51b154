"""The study's tables, from tidy rows and small JSON files: pandas and scipy, no torch.

One-pixel attack: Tables IV, V and VIII (:func:`success_table`), Table VII
(:func:`de_vs_random_table`), the search methods side by side (:func:`search_methods_table`,
:func:`one_pixel_ceiling_table`) and the data of its figures. Fooling images: the summary, the
direct-versus-CPPN test, transfer and gradient ascent. Retraining: one row per round and the
round-1-versus-later test. Networks and rule timings. docs/method.md says how each is defined.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from evofool import metrics
from evofool.io import read_json
from evofool.plan import ENCODINGS, PROTOCOL_METHODS, SEARCH_PROTOCOLS
from evofool.targets import path_wildcards

NETWORK_COLUMNS = [
    "dataset",
    "net",
    "arch",
    "width",
    "seed",
    "epochs",
    "parameters",
    "test_accuracy",
    "test_images",
    "train_seconds",
    "device",
    "threads",
]


def with_leading_columns(frame: pd.DataFrame, columns: Mapping[str, Any]) -> pd.DataFrame:
    """``frame`` with ``columns`` (name -> value for every row) inserted first, in order."""
    for i, (name, value) in enumerate(columns.items()):
        frame.insert(i, name, value)
    return frame


# --- one-pixel attack -----------------------------------------------------------------------


def _setting_key(frame: pd.DataFrame) -> tuple:
    row = frame.iloc[0]
    return row["dataset"], row["net"], int(row["model_seed"]), int(row["pixels"])


def _by_setting(attacks: Sequence[pd.DataFrame]) -> dict[tuple, dict[str, pd.DataFrame]]:
    """Non-empty attack tables keyed by (dataset, net, model_seed, pixels), then by protocol."""
    groups: dict[tuple, dict[str, pd.DataFrame]] = {}
    for frame in attacks:
        if len(frame):
            groups.setdefault(_setting_key(frame), {})[frame["protocol"].iloc[0]] = frame
    return groups


def success_table(
    attacks: Sequence[pd.DataFrame], accuracies: Mapping[tuple[str, str, int], float]
) -> pd.DataFrame:
    """OPA Tables IV, V and VIII: one row per (network, pixels), rates with 95% intervals.

    Args:
        attacks: tidy tables of the ``targeted`` and ``nontargeted`` protocols.
        accuracies: clean test accuracy per (dataset, net, model_seed).
    """
    groups = _by_setting(attacks)
    rows = []
    for (dataset, net, seed, pixels), by_protocol in sorted(groups.items()):
        row: dict[str, Any] = {
            "dataset": dataset,
            "net": net,
            "model_seed": seed,
            "pixels": pixels,
            "accuracy": 100 * accuracies[(dataset, net, seed)],
        }
        if "targeted" in by_protocol:
            t = by_protocol["targeted"]
            row.update(_prefixed("targeted", metrics.summarize(t)))
            nt1 = metrics.nontargeted_from_targeted(t)
            row.update(_prefixed("nontargeted1", metrics.rate_with_interval(nt1)))
            row["targets_per_image"] = float(t.groupby("image_id")["success"].sum().mean())
        if "nontargeted" in by_protocol:
            row.update(_prefixed("nontargeted2", metrics.summarize(by_protocol["nontargeted"])))
        rows.append(row)
    return pd.DataFrame(rows)


def de_vs_random_table(attacks: Sequence[pd.DataFrame]) -> pd.DataFrame:
    """OPA Table VII: DE against random search, non-targeted.

    The paper's DE figure in Table VII is non-targeted 1 (success on at least one of the nine
    targeted attacks of an image): its random rate plus "DE minus random" gives Table IV's
    non-targeted-1 rate for every network. So ``nontargeted1_*`` and
    ``nontargeted1_minus_random`` are the like-for-like numbers (when the targeted protocol
    runs); ``de_*`` and ``difference`` set the true non-targeted DE run (non-targeted 2)
    beside random search at the same budget. Both attack the same images, so the row also
    holds the paired comparison of that run with random search (``paired_*``, ``de_only``,
    ``random_only``, ``mcnemar_p``; see :func:`evofool.metrics.paired_comparison`).

    The paper gives random search "the same number of evaluations (80 000)", twice one DE run's
    40,000 (400 x 100). ``random_budget`` and ``de_budget`` say which reading ran;
    ``random_at_de_budget_*`` is random search's rate within DE's budget, which equals its own
    rate when the two budgets are equal (``budgets.random: 80000`` gives the other reading).
    """
    groups = _by_setting(attacks)
    rows = []
    for (dataset, net, seed, pixels), by in sorted(groups.items()):
        if not {"nontargeted", "random"} <= set(by):
            continue
        de, rnd = metrics.summarize(by["nontargeted"]), metrics.summarize(by["random"])
        de_budget = int(by["nontargeted"]["budget"].max()) if "budget" in by["nontargeted"] else 0
        within = metrics.rate_with_interval(metrics.success_within(by["random"], de_budget))
        row = {
            "dataset": dataset,
            "net": net,
            "model_seed": seed,
            "pixels": pixels,
            **_prefixed("de", de),
            **_prefixed("random", rnd),
            "difference": de["rate"] - rnd["rate"],
            "de_budget": de_budget,
            "random_budget": int(by["random"]["budget"].max()) if "budget" in by["random"] else 0,
            **_prefixed("random_at_de_budget", {k: within[k] for k in ("rate", "low", "high")}),
            **_paired(
                by["nontargeted"],
                by["random"],
                {"first_only": "de_only", "second_only": "random_only"},
            ),
        }
        if "targeted" in by:
            nt1 = metrics.rate_with_interval(metrics.nontargeted_from_targeted(by["targeted"]))
            row.update(_prefixed("nontargeted1", nt1))
            row["nontargeted1_minus_random"] = nt1["rate"] - rnd["rate"]
        rows.append(row)
    return pd.DataFrame(rows)


def search_methods_table(attacks: Sequence[pd.DataFrame]) -> pd.DataFrame:
    """Table VII extended: every non-targeted search method, at its own and at an equal budget.

    One row per (network, pixels, method): the method's ``budget`` and, at that budget, the
    success rate with its 95% Wilson interval, mean queries and model queries over all attacks,
    confidence and distortion over successes (:func:`evofool.metrics.summarize`). The
    ``equal_*`` columns give the success rate within ``equal_budget``, the smallest budget of
    the methods run on that network and pixel count
    (:func:`evofool.metrics.success_within`). The other methods are also set against DE image
    by image, each at its own budget (``minus_de_*``, ``only_*``, ``mcnemar_p``).

    Args:
        attacks: tidy tables of the protocols in :data:`evofool.plan.SEARCH_PROTOCOLS`.
    """
    rows = []
    for (dataset, net, seed, pixels), by in sorted(_by_setting(attacks).items()):
        present = [p for p in SEARCH_PROTOCOLS if p in by]
        if not present:
            continue
        equal = int(min(by[p]["budget"].min() for p in present))
        for protocol in present:
            frame = by[protocol]
            within = metrics.rate_with_interval(metrics.success_within(frame, equal))
            versus = _versus_de(frame, by.get("nontargeted"), protocol)
            rows.append(
                {
                    **_method_key(dataset, net, seed, pixels, protocol),
                    "budget": int(frame["budget"].max()),
                    **metrics.summarize(frame),
                    "equal_budget": equal,
                    **_prefixed("equal", {k: within[k] for k in ("rate", "low", "high")}),
                    **versus,
                }
            )
    return pd.DataFrame(rows)


def _method_key(dataset: str, net: str, seed: int, pixels: int, protocol: str) -> dict[str, Any]:
    """The leading columns of a search-method row: the attacked network, ``d`` and the method."""
    return {
        "dataset": dataset,
        "net": net,
        "model_seed": seed,
        "pixels": pixels,
        "method": PROTOCOL_METHODS[protocol],
    }


def _versus_de(frame: pd.DataFrame, de: pd.DataFrame | None, protocol: str) -> dict[str, float]:
    """A method against DE on the images both attacked, each at its own budget (NaN for DE).

    ``minus_de_*`` is the method's rate minus DE's in points with its 95% paired interval;
    ``only_method`` and ``only_de`` count the images only one of them fooled; ``mcnemar_p``
    is the exact McNemar test (:func:`evofool.metrics.paired_comparison`).
    """
    renamed = {
        "paired_difference": "minus_de",
        "paired_low": "minus_de_low",
        "paired_high": "minus_de_high",
        "first_only": "only_method",
        "second_only": "only_de",
    }
    if de is None or protocol == "nontargeted":
        names = ["paired_items", *renamed.values(), "mcnemar_p"]
        return dict.fromkeys(names, np.nan)
    return _paired(frame, de, renamed)


CEILING_COLUMNS = [
    "dataset",
    "net",
    "model_seed",
    "pixels",
    "method",
    "images",
    "ceiling_budget",
    "ceiling_images",
    "ceiling_share",
    "success_inside",
    "success_outside",
    "failure_inside",
    "failure_outside",
    "ceiling_reached",
]


def one_pixel_ceiling_table(attacks: Sequence[pd.DataFrame]) -> pd.DataFrame:
    """How much of the extreme-colour one-pixel ceiling each method reaches.

    The exhaustive search (``corners`` at ``d = 1``) tells for each image whether some pixel
    set to some extreme colour fools the network: those images are the ceiling. One row per
    (network, pixels, method) cross-tabulates that method's attacks against it, over the
    images both attacked: successes and failures inside and outside the ceiling, and the share
    of the ceiling's images the method fooled.

    Only a ``corners`` run with the ``misclassified`` stop proves that no adversarial exists
    where it fails; other stops give no ceiling. ``ceiling_budget`` is that run's budget: below
    ``H x W x 2^C`` (``budgets.corners`` capping it) the ceiling is a lower bound.

    Args:
        attacks: tidy tables of the protocols in :data:`evofool.plan.SEARCH_PROTOCOLS`; the
            ``corners`` tables at ``d = 1`` define the ceiling of their network.
    """
    groups = _by_setting(attacks)
    exhaustive = {
        key[:3]: by["corners"]
        for key, by in groups.items()
        if key[3] == 1 and "corners" in by and (by["corners"]["stop"] == "misclassified").all()
    }
    rows = []
    for (dataset, net, seed, pixels), by in sorted(groups.items()):
        corners = exhaustive.get((dataset, net, seed))
        if corners is None:
            continue
        ceiling = corners.set_index("image_id")["success"].astype(bool)
        for protocol in (p for p in SEARCH_PROTOCOLS if p in by):
            success = by[protocol].set_index("image_id")["success"].astype(bool)
            images = success.index.intersection(ceiling.index)
            inside, won = ceiling[images].to_numpy(), success[images].to_numpy()
            rows.append(
                {
                    **_method_key(dataset, net, seed, pixels, protocol),
                    "images": len(images),
                    "ceiling_budget": int(corners["budget"].max()),
                    "ceiling_images": int(inside.sum()),
                    "ceiling_share": 100 * float(inside.mean()) if len(images) else np.nan,
                    "success_inside": int((won & inside).sum()),
                    "success_outside": int((won & ~inside).sum()),
                    "failure_inside": int((~won & inside).sum()),
                    "failure_outside": int((~won & ~inside).sum()),
                    "ceiling_reached": (
                        100 * float((won & inside).sum() / inside.sum()) if inside.any() else np.nan
                    ),
                }
            )
    return pd.DataFrame(rows, columns=CEILING_COLUMNS)


def success_against_queries(attacks: Sequence[pd.DataFrame], points: int = 60) -> pd.DataFrame:
    """Share of attacks successful within q queries, per method and pixels (long format).

    For each method ``q`` runs over ``points`` values from 1 to its own budget, evenly on a log
    scale, so each curve ends at its method's budget.
    """
    parts = []
    for (_, _, _, pixels), by in sorted(_by_setting(attacks).items()):
        for protocol in (p for p in SEARCH_PROTOCOLS if p in by):
            frame = by[protocol]
            budget = int(frame["budget"].max())
            grid = np.unique(np.geomspace(1, budget, points).round().astype(np.int64))
            share = metrics.success_within(frame, grid).mean(axis=0)
            parts.append(
                pd.DataFrame(
                    {
                        "pixels": pixels,
                        "method": PROTOCOL_METHODS[protocol],
                        "queries": grid,
                        "success_rate": 100 * share,
                    }
                )
            )
    columns = ["pixels", "method", "queries", "success_rate"]
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=columns)


def _paired(
    first: pd.DataFrame, second: pd.DataFrame, renamed: Mapping[str, str]
) -> dict[str, float]:
    """Two attack tables on the images both attacked: McNemar and a paired interval.

    The columns of :func:`evofool.metrics.paired_comparison`, renamed by ``renamed``.
    """
    test = metrics.paired_comparison(
        first.set_index("image_id")["success"], second.set_index("image_id")["success"]
    )
    return {renamed.get(k, k): v for k, v in test.items()}


def _prefixed(prefix: str, values: Mapping[str, float]) -> dict[str, float]:
    return {f"{prefix}_{k}": v for k, v in values.items()}


def fitness_curves(attacks: pd.DataFrame, limit: int = 30) -> np.ndarray:
    """Best-fitness curves ``(k, generations + 1)`` of up to ``limit`` successful attacks."""
    ok = attacks[attacks["success"].astype(bool)].head(limit)
    curves = [[np.nan if v is None else v for v in json.loads(c)] for c in ok["fitness_curve"]]
    if not curves:  # no success: an empty plot, as wide as the budget
        if not len(attacks):
            return np.empty((0, 1))
        if "budget" in attacks and attacks["budget"].notna().all():
            width = -(-int(attacks["budget"].max()) // int(attacks["popsize"].max()))
        else:
            width = int(attacks["generations"].max()) + 1
        return np.empty((0, width))
    return np.array(curves, dtype=float)


def reachable_shares(tables: Sequence[pd.DataFrame], n_classes: int) -> pd.DataFrame:
    """Share of images perturbable to k target classes, per pixel count (long format)."""
    parts = []
    for t in tables:
        if len(t):
            shares = metrics.reachable_targets(t, n_classes)
            parts.append(
                pd.DataFrame(
                    {
                        "k": shares.index,
                        "share": shares.to_numpy(),
                        "setting": f"{int(t['pixels'].iloc[0])} pixel(s)",
                    }
                )
            )
    return pd.concat(parts, ignore_index=True)


# --- fooling images -------------------------------------------------------------------------


def summary_table(elites: pd.DataFrame, threshold: float = 0.99) -> pd.DataFrame:
    """Per (network, encoding, insertion): median confidence, classes above threshold, cells."""
    kept = elites[~elites["excluded"].astype(bool)]
    rows = []
    keys = ["dataset", "net", "model_seed", "encoding", "insertion"]
    for key, g in kept.groupby(keys, sort=True):
        per_run = g.groupby("run")
        conf = g["confidence"].fillna(0.0)
        rows.append(
            {
                **dict(zip(keys, key, strict=True)),
                "runs": g["run"].nunique(),
                "median_confidence": 100 * float(conf.median()),
                "q25_confidence": 100 * float(conf.quantile(0.25)),
                "q75_confidence": 100 * float(conf.quantile(0.75)),
                "classes_at_99": float(
                    per_run["confidence"].apply(lambda c: (c >= threshold).sum()).median()
                ),
                "cells_filled": float(
                    per_run["confidence"].apply(lambda c: c.notna().sum()).mean()
                ),
                "classes": int(g["class"].nunique()),
            }
        )
    return pd.DataFrame(rows)


def encoding_tests(elites: pd.DataFrame) -> pd.DataFrame:
    """Direct against CPPN best confidences, per network and insertion rule, run by run.

    The test compares runs, not cells (:func:`evofool.metrics.run_level_test` on each run's
    median best confidence, ``p_value``, with ``p_min`` the smallest p its run counts allow).
    The cell-level Mann-Whitney U (``cell_u``, U of the direct cells; ``cell_p_value``) treats
    the cells of a run as independent and is kept as description only.
    """
    kept = elites[~elites["excluded"].astype(bool)]
    rows = []
    for key, g in kept.groupby(["dataset", "net", "model_seed", "insertion"], sort=True):
        by = {e: g[g["encoding"] == e] for e in ENCODINGS}
        if all(len(v) for v in by.values()):
            conf = {e: v["confidence"].fillna(0.0) for e, v in by.items()}
            medians = {e: metrics.run_medians(conf[e], by[e]["run"]) for e in ENCODINGS}
            cells = metrics.mann_whitney(conf["direct"].to_numpy(), conf["cppn"].to_numpy())
            rows.append(
                {
                    "dataset": key[0],
                    "net": key[1],
                    "model_seed": key[2],
                    "insertion": key[3],
                    "median_direct": 100 * float(conf["direct"].median()),
                    "median_cppn": 100 * float(conf["cppn"].median()),
                    **_run_test(medians["direct"], medians["cppn"]),
                    **_cell_test(cells),
                }
            )
    return pd.DataFrame(rows)


def _run_test(first: np.ndarray, second: np.ndarray) -> dict[str, float]:
    """The run-level test's columns, run medians in percent."""
    test = metrics.run_level_test(first, second)
    return {
        "runs_a": test["runs_a"],
        "runs_b": test["runs_b"],
        "run_difference": 100 * test["run_difference"],
        "p_value": test["p_value"],
        "p_min": test["p_min"],
    }


def _cell_test(test: Mapping[str, float]) -> dict[str, float]:
    """The cell-level Mann-Whitney columns, named as description."""
    return {
        "cell_u": test["u"],
        "cell_p_value": test["p_value"],
        "cells_a": test["n_a"],
        "cells_b": test["n_b"],
    }


def transfer_table(rows: pd.DataFrame) -> pd.DataFrame:
    """Per source setting and target network: median confidence before and after transfer.

    Confidences and ``share_target_at_99`` (elites the target network puts at 99% or more) are
    in percent.
    """
    keys = ["dataset", "net", "model_seed", "encoding", "insertion", "target", "relation"]
    out = rows.groupby(keys, sort=True).agg(
        elites=("class", "size"),
        median_source_confidence=("source_confidence", "median"),
        median_target_confidence=("target_confidence", "median"),
        share_target_at_99=("target_confidence", lambda c: 100 * float((c >= 0.99).mean())),
    )
    out[["median_source_confidence", "median_target_confidence"]] *= 100
    return out.reset_index()


def ascent_table(results: Mapping[str, Mapping[str, Any]]) -> pd.DataFrame:
    """One row per (network, class): final confidence and the step each threshold was reached.

    Args:
        results: saved gradient-ascent results by the path that names their network.
    """
    rows = []
    for path, r in sorted(results.items()):
        key = path_wildcards(path)
        for k, name in enumerate(r["classes"]):
            row = {
                "dataset": key.get("dataset"),
                "net": key.get("net"),
                "model_seed": int(key.get("seed", 0)),
                "class": name,
                "confidence": float(r["confidences"][k]),
                "steps": r["steps"],
                "decay": r["decay"],
            }
            for t, step in zip(r["thresholds"], r["steps_to"][k].tolist(), strict=True):
                row[f"step_to_{100 * t:g}"] = step
            rows.append(row)
    return pd.DataFrame(rows)


# --- retraining rounds ----------------------------------------------------------------------


def round_table(rounds: pd.DataFrame, elites: pd.DataFrame) -> pd.DataFrame:
    """Per round: clean accuracy, held-out share, fooling images seen, median best confidence.

    Args:
        rounds: one row per round (``round``, ``clean_accuracy``, ``heldout_fooling_share``,
            ``train_images``, ``fooling_train_images``).
        elites: one row per (round, run, class) with the best ``confidence`` of an evaluation
            run (excluded classes already dropped).
    """
    per_round = elites.groupby("round")["confidence"]
    at_99 = elites.assign(hit=elites["confidence"] >= 0.99).groupby(["round", "run"])["hit"].sum()
    stats = pd.DataFrame(
        {
            "eval_runs": elites.groupby("round")["run"].nunique(),
            "median_confidence": 100 * per_round.median(),
            "q25_confidence": 100 * per_round.quantile(0.25),
            "q75_confidence": 100 * per_round.quantile(0.75),
            "classes_at_99": at_99.groupby("round").median(),
        }
    )
    return rounds.merge(stats.reset_index(), on="round", how="left").sort_values("round")


ROUND_TEST_COLUMNS = [
    "round",
    "median_round_1",
    "median_round_r",
    "runs_a",
    "runs_b",
    "run_difference",
    "p_value",
    "p_min",
    "cell_u",
    "cell_p_value",
    "cells_a",
    "cells_b",
]


def round_tests(elites: pd.DataFrame) -> pd.DataFrame:
    """Round 1's best confidences against each later round's, evaluation run by run.

    As :func:`encoding_tests`: ``p_value`` compares the runs' median best confidences
    (:func:`evofool.metrics.run_level_test`); ``cell_u`` (U of round 1's cells) and
    ``cell_p_value`` are the cell-level Mann-Whitney U, description only.
    """
    first = elites[elites["round"] == 1]
    first_medians = metrics.run_medians(first["confidence"], first["run"])
    rows = []
    for r, g in sorted(elites[elites["round"] > 1].groupby("round")):
        cells = metrics.mann_whitney(first["confidence"].to_numpy(), g["confidence"].to_numpy())
        rows.append(
            {
                "round": int(r),
                "median_round_1": 100 * float(first["confidence"].median()),
                "median_round_r": 100 * float(g["confidence"].median()),
                **_run_test(first_medians, metrics.run_medians(g["confidence"], g["run"])),
                **_cell_test(cells),
            }
        )
    return pd.DataFrame(rows, columns=ROUND_TEST_COLUMNS)


# --- networks and rule timings --------------------------------------------------------------


def networks_table(metrics_files: Iterable[str | Path]) -> pd.DataFrame:
    """One row per trained network, sorted by dataset, network and seed."""
    rows = [read_json(p) for p in metrics_files]
    table = pd.DataFrame(rows, columns=NETWORK_COLUMNS)
    return table.sort_values(["dataset", "net", "seed"]).reset_index(drop=True)


def rule_benchmarks(directory: str | Path) -> pd.DataFrame:
    """Per rule, from Snakemake's ``benchmark:`` files: jobs, wall and CPU time, peak memory.

    A file ``<directory>/<rule>/...tsv`` or ``<directory>/<rule>.tsv`` belongs to ``rule``;
    a job benchmarked several times (``repeat``) counts once, with its mean.
    """
    root = Path(directory)
    rows = []
    for path in sorted(root.rglob("*.tsv")):
        parts = path.relative_to(root).parts
        rule = parts[0] if len(parts) > 1 else path.stem
        bench = pd.read_csv(path, sep="\t")
        if bench.empty:
            continue
        rows.append(
            {
                "rule": rule,
                "seconds": float(bench["s"].mean()),
                "cpu_seconds": float(pd.to_numeric(bench["cpu_time"], errors="coerce").mean()),
                "max_rss_mb": float(pd.to_numeric(bench["max_rss"], errors="coerce").max()),
            }
        )
    columns = [
        "rule",
        "jobs",
        "total_seconds",
        "median_seconds",
        "max_seconds",
        "cpu_seconds",
        "peak_rss_mb",
    ]
    if not rows:
        return pd.DataFrame(columns=columns)
    jobs = pd.DataFrame(rows)
    table = jobs.groupby("rule").agg(
        jobs=("seconds", "size"),
        total_seconds=("seconds", "sum"),
        median_seconds=("seconds", "median"),
        max_seconds=("seconds", "max"),
        cpu_seconds=("cpu_seconds", "sum"),
        peak_rss_mb=("max_rss_mb", "max"),
    )
    return table.reset_index().sort_values("total_seconds", ascending=False)[columns]
