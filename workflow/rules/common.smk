# Config validation and the target list. The logic lives in the planning layer (evofool.plan,
# evofool.config, evofool.targets), which imports no torch, numba or scipy: parsing stays fast.
import sys

from evofool.config import check_local_paths, resolve_config
from evofool.errors import EvofoolError
from evofool import plan, reproducibility, targets

try:
    resolve_config(config, workflow.source_path("../schemas/config.schema.yaml"))
    check_local_paths(config, ".")
except EvofoolError as exc:
    sys.exit(f"evofool: {exc}")

# Every job (here or on a cluster node, whose Snakemake parses this file again) inherits these
# before it loads torch: in portable mode the CPU libraries' AVX2 caps.
reproducibility.apply(config["reproducibility"])

DATASETS = sorted(config["datasets"])
MODELS = targets.model_keys(config)
FOOL_MODELS = targets.attacked_models(config, "fooling")
RETRAIN_MODELS = targets.attacked_models(config, "retraining")
STUDY_TARGETS = targets.study_targets(config)


wildcard_constraints:
    dataset=targets.alternatives(DATASETS),
    net=targets.alternatives({net for _, net, _ in MODELS}),
    seed=r"\d+",
    pixels=r"\d+",
    shard=r"\d+",
    protocol=targets.alternatives(plan.PROTOCOLS),
    encoding=targets.alternatives(plan.ENCODINGS),
    insertion=targets.alternatives(plan.INSERTIONS),
    run=r"\d+",
    round=r"[1-9]\d*",
    purpose=targets.alternatives(plan.PURPOSES),


def network_settings(wildcards):
    return config["networks"][wildcards.dataset][wildcards.net]


def all_targets(wildcards):
    return targets.all_targets(config)


def job_resources(kind):
    """Threads and resources of a job that trains or queries a network."""
    return dict(
        gpu=config["gpus_per_job"],
        mem_mb=targets.MEM_MB[kind],
        runtime=targets.RUNTIME[kind],
    )


def opa_shards(wildcards):
    """Every shard of one (network, pixels, protocol)."""
    settings = plan.experiment_settings(config, "one_pixel", wildcards.dataset)
    n = plan.one_pixel_shards(settings, wildcards.protocol)
    return expand(targets.OPA_SHARD, shard=range(n), allow_missing=True)


def retraining_runs(purpose, round_):
    """Every run shard of one round and purpose of the chain named by the wildcards."""

    def shards(wc):
        r = int(wc["round"]) if round_ is None else round_(wc)
        n = plan.round_shards(config["retraining"], r, purpose)
        return [
            targets.RETRAIN_RUNS.format(
                dataset=wc.dataset,
                net=wc.net,
                seed=wc.seed,
                round=r,
                purpose=purpose,
                shard=s,
            )
            for s in range(n)
        ]

    return shards


def previous_round(wc):
    return int(wc["round"]) - 1


def retraining_rounds(pattern):
    return [
        pattern.format(**m, round=r)
        for m in RETRAIN_MODELS
        for r in range(1, config["retraining"]["rounds"] + 1)
    ]


def present(path):
    """``[path]`` when the config builds it, else an empty list."""
    return [path] if path in STUDY_TARGETS else []


def fooling_budget(wildcards):
    """The fooling budget of one network's dataset, in words (for captions)."""
    settings = plan.experiment_settings(config, "fooling", wildcards.dataset)
    return plan.fooling_budget(settings)


def fooling_budgets(wildcards):
    """The fooling budget of every dataset the fooling experiments run on, in words."""
    datasets = sorted({m["dataset"] for m in FOOL_MODELS})
    settings = {d: plan.experiment_settings(config, "fooling", d) for d in datasets}
    return "; ".join(f"{d}: {plan.fooling_budget(s)}" for d, s in settings.items())


def ascent_budgets(wildcards):
    """Gradient-ascent steps and decay per dataset (or of the one the wildcards name)."""
    datasets = (
        [wildcards.dataset]
        if "dataset" in wildcards.keys()
        else sorted({m["dataset"] for m in targets.fool_ascent_models(config)})
    )
    parts = []
    for d in datasets:
        g = plan.experiment_settings(config, "fooling", d)["gradient_ascent"]
        parts.append(f"{d}: {g['steps']} steps, L2 decay {g['decay']}")
    return "; ".join(parts)
