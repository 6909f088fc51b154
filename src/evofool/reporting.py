"""Tables for the report, built from the JSON files that rules write."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from evofool.io import read_json

NETWORK_COLUMNS = [
    "dataset", "net", "arch", "width", "seed", "epochs", "parameters",
    "test_accuracy", "test_images", "train_seconds", "device", "threads",
]  # fmt: skip


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
    columns = ["rule", "jobs", "total_seconds", "median_seconds", "max_seconds",
               "cpu_seconds", "peak_rss_mb"]  # fmt: skip
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


def generations_text(generations: int | Mapping[str, int]) -> str:
    """``200``, or ``5000 (cppn) / 20000 (direct)`` when each encoding has its own."""
    if isinstance(generations, Mapping):
        return " / ".join(f"{v} ({k})" for k, v in sorted(generations.items()))
    return str(generations)


def fooling_budget(settings: Mapping[str, Any]) -> str:
    """The budget of a fooling experiment in words, for captions (``settings`` of one dataset)."""
    text = (
        f"{settings['runs']} runs per setting, {generations_text(settings['generations'])} "
        f"generations of {settings['population']} children, direct mutation rate "
        f"{settings['mutation_rate']}"
    )
    if settings.get("image_size"):
        size = settings["image_size"]
        text += (
            f", {size}x{size} {settings['color'].upper()} images, each scored as the mean "
            f"softmax over {settings.get('crops', 1)} crops of the network's input"
        )
    return text
