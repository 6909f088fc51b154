"""The study's file layout: every path names the settings that produced it."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from evofool.plan import SEARCH_PROTOCOLS, experiment_settings, one_pixel_budget

DATASET = "results/data/dataset={dataset}/dataset.pt"
DATASET_SUMMARY = "results/data/dataset={dataset}/summary.json"
MODEL = "results/models/dataset={dataset}/net={net}/seed={seed}/model.pt"
MODEL_METRICS = "results/models/dataset={dataset}/net={net}/seed={seed}/metrics.json"
MODEL_HISTORY = "results/models/dataset={dataset}/net={net}/seed={seed}/history.csv"
MODEL_CHECKPOINT = "results/checkpoints/dataset={dataset}/net={net}/seed={seed}/checkpoint.pt"
NETWORKS_TABLE = "results/tables/networks.csv"
PRETRAINED_WEIGHTS = "resources/imagenet/alexnet-owt-7be5be79.pth"  # downloaded when not named

_OPA = "results/one_pixel/dataset={dataset}/net={net}/seed={seed}"
OPA_IMAGES = _OPA + "/images.pt"
OPA_SHARD = _OPA + "/pixels={pixels}/protocol={protocol}/shards/shard={shard}.pt"
OPA_ATTACKS = _OPA + "/pixels={pixels}/protocol={protocol}/attacks.csv"
OPA_SUCCESS_TABLE = "results/one_pixel/tables/success.csv"
OPA_RANDOM_TABLE = "results/one_pixel/tables/de_vs_random.csv"
OPA_METHODS_TABLE = "results/one_pixel/tables/search_methods.csv"
OPA_CEILING_TABLE = "results/one_pixel/tables/one_pixel_ceiling.csv"
_OPA_FIG = "results/one_pixel/figures/dataset={dataset}/net={net}/seed={seed}"
OPA_FIG_EXAMPLES = _OPA_FIG + "/pixels={pixels}/examples.png"
OPA_FIG_HEATMAP = _OPA_FIG + "/pixels={pixels}/heatmap_{protocol}.png"
OPA_FIG_CLASSES = _OPA_FIG + "/pixels={pixels}/class_counts_{protocol}.png"
OPA_FIG_FITNESS = _OPA_FIG + "/pixels={pixels}/fitness.png"
OPA_FIG_REACHABLE = _OPA_FIG + "/reachable_targets.png"
OPA_FIG_METHODS = _OPA_FIG + "/success_against_queries.png"

# Memory (MB) and runtime (minutes) requested per job kind on a cluster.
MEM_MB = {"data": 8000, "train": 8000, "attack": 6000, "evolve": 4000}
RUNTIME = {"data": 60, "train": 240, "attack": 240, "evolve": 240}

_FOOL = "results/fooling/dataset={dataset}/net={net}/seed={seed}"
FOOL_RUN = _FOOL + "/encoding={encoding}/insertion={insertion}/run={run}/run.pt"
FOOL_CHECKPOINT = (
    "results/checkpoints/fooling/dataset={dataset}/net={net}/seed={seed}/encoding={encoding}/"
    "insertion={insertion}/run={run}.pt"
)
FOOL_ELITES = _FOOL + "/elites.csv"
FOOL_HISTORY = _FOOL + "/history.csv"
FOOL_TRANSFER_ROWS = _FOOL + "/transfer.csv"
FOOL_ASCENT = _FOOL + "/gradient_ascent.pt"
FOOL_SUMMARY_TABLE = "results/fooling/tables/summary.csv"
FOOL_TESTS_TABLE = "results/fooling/tables/direct_vs_cppn.csv"
FOOL_TRANSFER_TABLE = "results/fooling/tables/transfer.csv"
FOOL_ASCENT_TABLE = "results/fooling/tables/gradient_ascent.csv"
_FOOL_FIG = "results/fooling/figures/dataset={dataset}/net={net}/seed={seed}"
FOOL_FIG_ELITES = _FOOL_FIG + "/elites_{encoding}_{insertion}.png"
FOOL_FIG_CLASSES = _FOOL_FIG + "/class_confidence.png"
FOOL_FIG_PROGRESS = _FOOL_FIG + "/progress.png"
FOOL_FIG_ASCENT = _FOOL_FIG + "/gradient_ascent.png"

_RETRAIN = "results/retraining/dataset={dataset}/net={net}/seed={seed}/round={round}"
RETRAIN_DATASET = _RETRAIN + "/dataset.pt"
RETRAIN_MODEL = _RETRAIN + "/model.pt"
RETRAIN_MODEL_METRICS = _RETRAIN + "/metrics.json"
RETRAIN_MODEL_HISTORY = _RETRAIN + "/history.csv"
RETRAIN_MODEL_CHECKPOINT = (
    "results/checkpoints/retraining/dataset={dataset}/net={net}/seed={seed}/round={round}/model.pt"
)
RETRAIN_RUNS = _RETRAIN + "/{purpose}/shard={shard}.pt"
RETRAIN_RUNS_CHECKPOINT = (
    "results/checkpoints/retraining/dataset={dataset}/net={net}/seed={seed}/round={round}/"
    "{purpose}/shard={shard}"
)
RETRAIN_ROUND = _RETRAIN + "/evaluation.json"
RETRAIN_ELITES = _RETRAIN + "/elites.csv"
RETRAIN_ROUNDS_TABLE = "results/retraining/tables/rounds.csv"
RETRAIN_TESTS_TABLE = "results/retraining/tables/round_1_vs_later.csv"
PAPER_TABLE = "results/tables/paper_vs_ours.csv"
RULES_TABLE = "results/tables/rule_benchmarks.csv"
RULES_FIG = "results/figures/rule_benchmarks.png"
DIGESTS_TABLE = "results/tables/digests.csv"
RETRAIN_FIG = "results/retraining/figures/dataset={dataset}/net={net}/seed={seed}/rounds.png"


def path_wildcards(path: str | Path) -> dict[str, str]:
    """The ``key=value`` parts of a result path, e.g. ``{"dataset": "mnist", "run": "0"}``."""
    return dict(part.split("=", 1) for part in Path(path).parts if "=" in part)


def alternatives(values: Iterable[str]) -> str:
    """A regex matching exactly one of ``values`` (for ``wildcard_constraints``)."""
    vals = sorted(set(values))
    return "|".join(re.escape(v) for v in vals) if vals else "(?!)"


def model_keys(config: Mapping[str, Any]) -> list[tuple[str, str, int]]:
    """Every (dataset, network, seed) the config trains."""
    return [
        (dataset, net, seed)
        for dataset, nets in sorted(config["networks"].items())
        for net, settings in sorted(nets.items())
        for seed in settings["seeds"]
    ]


def model_files(config: Mapping[str, Any], pattern: str = MODEL) -> list[str]:
    """``pattern`` filled in for every trained model."""
    return [pattern.format(dataset=d, net=n, seed=s) for d, n, s in model_keys(config)]


def attacked_models(config: Mapping[str, Any], section: str) -> list[dict[str, Any]]:
    """Wildcard values (dataset, net, seed) of the networks a section attacks."""
    settings = config[section]
    if not settings["enabled"]:
        return []
    seed = settings["model_seed"]
    return [
        {"dataset": key.split("/")[0], "net": key.split("/")[1], "seed": seed}
        for key in settings["models"]
    ]


# Keys of an experiment section that choose what runs rather than how one job runs.
_SELECTION_KEYS = {
    "one_pixel": ("models", "pixels", "protocols", "examples", "enabled"),
    "fooling": ("models", "encodings", "insertions", "runs", "transfer", "gradient_ascent"),
}


def job_settings(config: Mapping[str, Any], section: str, dataset: str) -> dict[str, Any]:
    """What one attack or evolution job of ``dataset`` depends on (its ``params``)."""
    drop = _SELECTION_KEYS[section]
    return {k: v for k, v in experiment_settings(config, section, dataset).items() if k not in drop}


def one_pixel_job_settings(
    config: Mapping[str, Any], dataset: str, protocol: str
) -> dict[str, Any]:
    """:func:`job_settings` of one protocol's attacks: its method's ``budget``, not all budgets.

    Changing one method's budget thus reruns only that method's attacks.
    """
    settings = job_settings(config, "one_pixel", dataset)
    settings["budget"] = one_pixel_budget(settings, protocol)
    settings.pop("budgets", None)
    return settings


def fooling_job_settings(config: Mapping[str, Any], dataset: str, encoding: str) -> dict[str, Any]:
    """:func:`job_settings` of one fooling run, its generations resolved for ``encoding``.

    ``generations`` is a number, or (ImageNet: 20,000 direct, 5,000 CPPN) one per encoding.
    """
    settings = job_settings(config, "fooling", dataset)
    if isinstance(settings["generations"], Mapping):
        settings["generations"] = settings["generations"][encoding]
    return settings


def _opa_models(config: Mapping[str, Any]) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """(wildcards, settings) of every network the one-pixel experiments attack."""
    return [
        (m, experiment_settings(config, "one_pixel", m["dataset"]))
        for m in attacked_models(config, "one_pixel")
    ]


def opa_attack_tables(config: Mapping[str, Any], protocols: Iterable[str] | None = None):
    """The tidy attack table of every (network, pixels, protocol) the config runs."""
    return [
        OPA_ATTACKS.format(**m, pixels=d, protocol=p)
        for m, settings in _opa_models(config)
        for d in settings["pixels"]
        for p in settings["protocols"]
        if protocols is None or p in protocols
    ]


def opa_figures(config: Mapping[str, Any]) -> list[str]:
    """Every one-pixel figure the config's protocols allow."""
    out = []
    for m, settings in _opa_models(config):
        protocols = set(settings["protocols"])
        if "targeted" in protocols:
            out.append(OPA_FIG_REACHABLE.format(**m))
        if len(protocols & set(SEARCH_PROTOCOLS)) > 1:
            out.append(OPA_FIG_METHODS.format(**m))
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
    models = _opa_models(config)
    if not models:
        return []
    out = []
    if any(set(s["protocols"]) & {"targeted", "nontargeted"} for _, s in models):
        out.append(OPA_SUCCESS_TABLE)
    if any({"nontargeted", "random"} <= set(s["protocols"]) for _, s in models):
        out.append(OPA_RANDOM_TABLE)
    if any(len(set(s["protocols"]) & set(SEARCH_PROTOCOLS)) > 1 for _, s in models):
        out += [OPA_METHODS_TABLE, OPA_CEILING_TABLE]
    return out + opa_figures(config)


def model_wildcards(model: Any) -> dict[str, Any]:
    """(dataset, net, seed) of a mapping or of Snakemake wildcards, seed as an integer."""
    get = model.get if isinstance(model, Mapping) else lambda k: getattr(model, k)
    return {"dataset": get("dataset"), "net": get("net"), "seed": int(get("seed"))}


def fool_runs(config: Mapping[str, Any], model: Any) -> list[str]:
    """Every run file of one attacked network (a mapping or Snakemake wildcards)."""
    model = model_wildcards(model)
    s = experiment_settings(config, "fooling", model["dataset"])
    return [
        FOOL_RUN.format(**model, encoding=e, insertion=i, run=r)
        for e in s["encodings"]
        for i in s["insertions"]
        for r in range(s["runs"])
    ]


def transfer_partners(config: Mapping[str, Any], model: Any) -> list[dict]:
    """Other networks trained on the same dataset: same architecture or another one."""
    model = model_wildcards(model)
    nets = config["networks"][model["dataset"]]
    arch = nets[model["net"]]["arch"]
    out = []
    for net, settings in sorted(nets.items()):
        for seed in settings["seeds"]:
            if (net, seed) == (model["net"], model["seed"]):
                continue
            relation = "same architecture" if settings["arch"] == arch else "other architecture"
            out.append(
                {"dataset": model["dataset"], "net": net, "seed": seed, "relation": relation}
            )
    return out


def pretrained_weights(config: Mapping[str, Any]) -> str:
    """The AlexNet weights file: the one the config names, else where it is downloaded to."""
    return config["imagenet"]["weights"] or PRETRAINED_WEIGHTS


def fool_targets(config: Mapping[str, Any]) -> list[str]:
    """Tables and figures of the fooling-image experiments."""
    models = attacked_models(config, "fooling")
    if not models:
        return []
    settings = [experiment_settings(config, "fooling", m["dataset"]) for m in models]
    out = [FOOL_SUMMARY_TABLE, FOOL_TESTS_TABLE]
    if any(
        s["transfer"] and transfer_partners(config, m)
        for m, s in zip(models, settings, strict=True)
    ):
        out.append(FOOL_TRANSFER_TABLE)
    if any(s["gradient_ascent"]["enabled"] for s in settings):
        out.append(FOOL_ASCENT_TABLE)
    for m, s in zip(models, settings, strict=True):
        out += [FOOL_FIG_CLASSES.format(**m), FOOL_FIG_PROGRESS.format(**m)]
        out += [
            FOOL_FIG_ELITES.format(**m, encoding=e, insertion=i)
            for e in s["encodings"]
            for i in s["insertions"]
        ]
        if s["gradient_ascent"]["enabled"]:
            out.append(FOOL_FIG_ASCENT.format(**m))
    return out


def fool_transfer_models(config: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Networks whose elites are scored on their dataset's other networks."""
    return [
        m
        for m in attacked_models(config, "fooling")
        if experiment_settings(config, "fooling", m["dataset"])["transfer"]
        and transfer_partners(config, m)
    ]


def fool_ascent_models(config: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Networks that gradient ascent runs on."""
    return [
        m
        for m in attacked_models(config, "fooling")
        if experiment_settings(config, "fooling", m["dataset"])["gradient_ascent"]["enabled"]
    ]


def retraining_model(model: Any, round_: int) -> str:
    """DNN_round of a chain: the trained network itself for round 1."""
    key = model_wildcards(model)
    return MODEL.format(**key) if round_ == 1 else RETRAIN_MODEL.format(**key, round=round_)


def retraining_dataset(model: Any, round_: int) -> str:
    """The dataset DNN_round was trained on: the original one for round 1."""
    key = model_wildcards(model)
    if round_ == 1:
        return DATASET.format(dataset=key["dataset"])
    return RETRAIN_DATASET.format(**key, round=round_)


def retraining_targets(config: Mapping[str, Any]) -> list[str]:
    """Tables and figures of the retraining rounds."""
    models = attacked_models(config, "retraining")
    if not models:
        return []
    return [RETRAIN_ROUNDS_TABLE, RETRAIN_TESTS_TABLE] + [RETRAIN_FIG.format(**m) for m in models]


def all_targets(config: Mapping[str, Any]) -> list[str]:
    """Everything ``snakemake`` builds by default.

    The study, the paper comparison, the tables' digests and the timings.
    """
    return [*study_targets(config), PAPER_TABLE, DIGESTS_TABLE, RULES_TABLE, RULES_FIG]


def digested_tables(config: Mapping[str, Any]) -> list[str]:
    """The study's tables whose sha256 the report shows (timing tables left out)."""
    tables = [*study_targets(config), PAPER_TABLE]
    return [t for t in tables if "/tables/" in t and t.endswith(".csv") and t != RULES_TABLE]


def study_targets(config: Mapping[str, Any]) -> list[str]:
    """Every table and figure of the experiments the config enables."""
    out = [DATASET_SUMMARY.format(dataset=d) for d in sorted(config["datasets"])]
    out += model_files(config)
    if model_keys(config):
        out.append(NETWORKS_TABLE)
    out += opa_targets(config)
    out += fool_targets(config)
    out += retraining_targets(config)
    return out
