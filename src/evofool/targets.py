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

_OPA = "results/one_pixel/dataset={dataset}/net={net}/seed={seed}"
OPA_IMAGES = _OPA + "/images.pt"
OPA_SHARD = _OPA + "/pixels={pixels}/protocol={protocol}/shards/shard={shard}.pt"
OPA_ATTACKS = _OPA + "/pixels={pixels}/protocol={protocol}/attacks.csv"
OPA_SUCCESS_TABLE = "results/one_pixel/tables/success.csv"
OPA_RANDOM_TABLE = "results/one_pixel/tables/de_vs_random.csv"
_OPA_FIG = "results/one_pixel/figures/dataset={dataset}/net={net}/seed={seed}"
OPA_FIG_EXAMPLES = _OPA_FIG + "/pixels={pixels}/examples.png"
OPA_FIG_HEATMAP = _OPA_FIG + "/pixels={pixels}/heatmap_{protocol}.png"
OPA_FIG_CLASSES = _OPA_FIG + "/pixels={pixels}/class_counts_{protocol}.png"
OPA_FIG_FITNESS = _OPA_FIG + "/pixels={pixels}/fitness.png"
OPA_FIG_REACHABLE = _OPA_FIG + "/reachable_targets.png"

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


def attacked_models(config: Mapping[str, Any], section: str) -> list[dict[str, Any]]:
    """Wildcard values (dataset, net, seed) of the networks a section attacks."""
    settings = config.get(section, {})
    if not settings.get("enabled", True):
        return []
    seed = settings.get("model_seed", 0)
    return [
        {"dataset": key.split("/")[0], "net": key.split("/")[1], "seed": seed}
        for key in settings.get("models", [])
    ]


def opa_attack_tables(config: Mapping[str, Any], protocols: Iterable[str] | None = None):
    """The tidy attack table of every (network, pixels, protocol) the config runs."""
    settings = config["one_pixel"]
    wanted = [p for p in settings["protocols"] if protocols is None or p in protocols]
    return [
        OPA_ATTACKS.format(**m, pixels=d, protocol=p)
        for m in attacked_models(config, "one_pixel")
        for d in settings["pixels"]
        for p in wanted
    ]


def opa_figures(config: Mapping[str, Any]) -> list[str]:
    """Every one-pixel figure the config's protocols allow."""
    settings = config["one_pixel"]
    protocols = set(settings["protocols"])
    out = []
    for m in attacked_models(config, "one_pixel"):
        if "targeted" in protocols:
            out.append(OPA_FIG_REACHABLE.format(**m))
        for d in settings["pixels"]:
            if "nontargeted" in protocols:
                out.append(OPA_FIG_EXAMPLES.format(**m, pixels=d))
                out.append(OPA_FIG_FITNESS.format(**m, pixels=d))
            for p in sorted(protocols & {"targeted", "nontargeted"}):
                out.append(OPA_FIG_HEATMAP.format(**m, pixels=d, protocol=p))
                out.append(OPA_FIG_CLASSES.format(**m, pixels=d, protocol=p))
    return out


def opa_targets(config: Mapping[str, Any]) -> list[str]:
    """Tables and figures of the one-pixel experiments."""
    if not attacked_models(config, "one_pixel"):
        return []
    protocols = set(config["one_pixel"]["protocols"])
    out = []
    if protocols & {"targeted", "nontargeted"}:
        out.append(OPA_SUCCESS_TABLE)
    if {"nontargeted", "random"} <= protocols:
        out.append(OPA_RANDOM_TABLE)
    return out + opa_figures(config)


def all_targets(config: Mapping[str, Any]) -> list[str]:
    """Everything ``snakemake`` builds by default for this config."""
    out = [DATASET_SUMMARY.format(dataset=d) for d in sorted(config.get("datasets", {}))]
    out += model_files(config)
    if model_keys(config):
        out.append(NETWORKS_TABLE)
    out += opa_targets(config)
    return out
