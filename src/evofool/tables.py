"""The study's tables, from tidy rows and small JSON files: pandas and scipy, no torch.

One-pixel attack: Tables IV, V and VIII (:func:`success_table`), Table VII
(:func:`de_vs_random_table`) and the data of its figures. Fooling images: the summary, the
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
from evofool.plan import ENCODINGS
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
    """OPA Table VII: non-targeted DE against random search at the same query budget.

    Both attack the same images, so beside the two rates and their difference the row holds
    the paired comparison over the images both attacked (``paired_*``, ``de_only``,
    ``random_only``, ``mcnemar_p``; see :func:`evofool.metrics.paired_comparison`).
    """
    groups = _by_setting(attacks)
    rows = []
    for (dataset, net, seed, pixels), by in sorted(groups.items()):
        if not {"nontargeted", "random"} <= set(by):
            continue
        de, rnd = metrics.summarize(by["nontargeted"]), metrics.summarize(by["random"])
        rows.append(
            {
                "dataset": dataset,
                "net": net,
                "model_seed": seed,
                "pixels": pixels,
                **_prefixed("de", de),
                **_prefixed("random", rnd),
                "difference": de["rate"] - rnd["rate"],
                **_paired(by["nontargeted"], by["random"]),
            }
        )
    return pd.DataFrame(rows)


def _paired(de: pd.DataFrame, rnd: pd.DataFrame) -> dict[str, float]:
    """DE against random search on the images both attacked: McNemar and a paired interval."""
    test = metrics.paired_comparison(
        de.set_index("image_id")["success"], rnd.set_index("image_id")["success"]
    )
    renamed = {"first_only": "de_only", "second_only": "random_only"}
    return {renamed.get(k, k): v for k, v in test.items()}


def _prefixed(prefix: str, values: Mapping[str, float]) -> dict[str, float]:
    return {f"{prefix}_{k}": v for k, v in values.items()}


def fitness_curves(attacks: pd.DataFrame, limit: int = 30) -> np.ndarray:
    """Best-fitness curves ``(k, generations + 1)`` of up to ``limit`` successful attacks."""
    ok = attacks[attacks["success"].astype(bool)].head(limit)
    curves = [[np.nan if v is None else v for v in json.loads(c)] for c in ok["fitness_curve"]]
    if not curves:  # no success: an empty plot, as wide as the budget
        return np.empty((0, int(attacks["generations"].max()) + 1 if len(attacks) else 1))
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
    """Mann-Whitney U of direct against CPPN best confidences, per network and insertion rule."""
    kept = elites[~elites["excluded"].astype(bool)]
    rows = []
    for key, g in kept.groupby(["dataset", "net", "model_seed", "insertion"], sort=True):
        by = {e: g.loc[g["encoding"] == e, "confidence"].fillna(0.0).to_numpy() for e in ENCODINGS}
        if all(len(v) for v in by.values()):
            test = metrics.mann_whitney(by["direct"], by["cppn"])
            rows.append(
                {
                    "dataset": key[0],
                    "net": key[1],
                    "model_seed": key[2],
                    "insertion": key[3],
                    "median_direct": 100 * float(np.median(by["direct"])),
                    "median_cppn": 100 * float(np.median(by["cppn"])),
                    **test,
                }
            )
    return pd.DataFrame(rows)


def transfer_table(rows: pd.DataFrame) -> pd.DataFrame:
    """Per source setting and target network: median confidence before and after transfer."""
    keys = ["dataset", "net", "model_seed", "encoding", "insertion", "target", "relation"]
    out = rows.groupby(keys, sort=True).agg(
        elites=("class", "size"),
        median_source_confidence=("source_confidence", "median"),
        median_target_confidence=("target_confidence", "median"),
        share_target_at_99=("target_confidence", lambda c: float((c >= 0.99).mean())),
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


def round_tests(elites: pd.DataFrame) -> pd.DataFrame:
    """Mann-Whitney U of round 1's best confidences against each later round's (as the paper)."""
    first = elites.loc[elites["round"] == 1, "confidence"].to_numpy()
    rows = []
    for r, g in sorted(elites[elites["round"] > 1].groupby("round")):
        later = g["confidence"].to_numpy()
        rows.append(
            {
                "round": int(r),
                "median_round_1": 100 * float(np.median(first)),
                "median_round_r": 100 * float(np.median(later)),
                **metrics.mann_whitney(first, later),
            }
        )
    return pd.DataFrame(rows)


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
