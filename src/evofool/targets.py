"""The study's file layout: every path names the settings that produced it."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

DATASET = "results/data/dataset={dataset}/dataset.pt"
DATASET_SUMMARY = "results/data/dataset={dataset}/summary.json"
MODEL = "results/models/dataset={dataset}/net={net}/seed={seed}/model.pt"
MODEL_METRICS = "results/models/dataset={dataset}/net={net}/seed={seed}/metrics.json"
MODEL_HISTORY = "results/models/dataset={dataset}/net={net}/seed={seed}/history.csv"
MODEL_CHECKPOINT = "results/checkpoints/dataset={dataset}/net={net}/seed={seed}/checkpoint.pt"
NETWORKS_TABLE = "results/tables/networks.csv"

# Memory (MB) and runtime (minutes) requested per job kind on a cluster.
MEM_MB = {"data": 8000, "train": 8000, "attack": 6000, "evolve": 4000}
RUNTIME = {"data": 60, "train": 240, "attack": 240, "evolve": 240}


def alternatives(values: Iterable[str]) -> str:
    """A regex matching exactly one of ``values`` (for ``wildcard_constraints``)."""
    vals = sorted(set(values))
    return "|".join(re.escape(v) for v in vals) if vals else "(?!)"


def model_keys(config: Mapping[str, Any]) -> list[tuple[str, str, int]]:
    """Every (dataset, network, seed) the config trains."""
    return [
        (dataset, net, seed)
        for dataset, nets in sorted(config.get("networks", {}).items())
        for net, settings in sorted(nets.items())
        for seed in settings.get("seeds", [0])
    ]


def model_files(config: Mapping[str, Any], pattern: str = MODEL) -> list[str]:
    """``pattern`` filled in for every trained model."""
    return [pattern.format(dataset=d, net=n, seed=s) for d, n, s in model_keys(config)]


def all_targets(config: Mapping[str, Any]) -> list[str]:
    """Everything ``snakemake`` builds by default for this config."""
    out = [DATASET_SUMMARY.format(dataset=d) for d in sorted(config.get("datasets", {}))]
    out += model_files(config)
    if model_keys(config):
        out.append(NETWORKS_TABLE)
    return out
