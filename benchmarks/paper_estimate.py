"""What the paper-scale study costs: jobs per rule (dry run) and device hours per stage.

Counts the jobs of ``configs/paper.yaml`` with a Snakemake dry run, then measures on this
machine's device what each network-bound job does:

* training: seconds per optimiser step of each paper network at full width (random data of the
  dataset's shape), times the config's epochs x steps per epoch;
* one-pixel attack shards: candidates per second of each CIFAR-10 network and ``d`` with the
  evaluation the engine picks (``auto``: incremental where it pays) at the config's forward
  batch, times the queries of a shard at the full budget (no early stop, so an upper bound;
  targeted attacks are 9 per image); the plain forward rate is printed beside it;
* evolution runs: one whole MAP-Elites run (the config's generations x population, direct and
  CPPN) against a full-width LeNet, timed end to end;
* every job: the start-up of a rule script (Python, torch and evofool imports).

Prints a table per rule and per stage and writes ``benchmarks/results/paper_estimate.json``.
On a GPU node, ``--device cuda`` gives GPU hours.

    python benchmarks/paper_estimate.py
    python benchmarks/paper_estimate.py --device cuda --threads 4
"""

from __future__ import annotations

import argparse
import json
import math
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml
from common import RESULTS, log

from evofool.attacks import SEARCH_METHODS, AttackSettings
from evofool.attacks._genotype import Phenotype
from evofool.attacks._incremental import build_evaluator
from evofool.attacks._one_pixel import search_space
from evofool.evolution import CPPNEncoding, DirectEncoding, MapElites
from evofool.models import ModelSpec, build_model
from evofool.plan import PROTOCOL_METHODS, one_pixel_budget
from evofool.versions import environment

REPO = Path(__file__).resolve().parents[1]
OUT = RESULTS / "paper_estimate.json"
SHAPES = {"mnist": (1, 28, 28), "cifar10": (3, 32, 32)}
TRAIN_IMAGES = {"mnist": 60_000, "cifar10": 50_000}
STAGES = {
    "networks": ["prepare_dataset", "train_model", "summarize_networks"],
    "one-pixel": ["select_attack_images", "attack_one_pixel"],
    "fooling": ["evolve_fooling_images", "transfer_fooling_images", "ascend_gradient"],
    "retraining": [
        "evolve_retraining_runs",
        "extend_retraining_dataset",
        "retrain_model",
        "evaluate_retraining_round",
    ],
}


def protocol_queries(o: dict, protocol: str, pixels: int, dataset: str) -> int:
    """Queries per attack of one protocol at full budget, resolved by the engine's method."""
    settings = AttackSettings(
        targeted=protocol == "targeted",
        pixels=pixels,
        popsize=o["popsize"],
        generations=o["generations"],
        optimizer=PROTOCOL_METHODS[protocol],
    )
    space = search_space(settings, SHAPES[dataset])
    return SEARCH_METHODS[settings.optimizer].budget(space, one_pixel_budget(o, protocol))


def paper_config(overlay: Path) -> dict[str, Any]:
    """The default config with the overlay merged over it, validated (defaults filled)."""
    from snakemake.utils import update_config  # noqa: PLC0415

    from evofool.config import resolve_config  # noqa: PLC0415

    config = yaml.safe_load((REPO / "config.yaml").read_text())
    update_config(config, yaml.safe_load(overlay.read_text()))  # as --configfile merges
    return resolve_config(config, REPO / "workflow" / "schemas" / "config.schema.yaml")


def job_counts(overlay: Path) -> dict[str, int]:
    """Jobs per rule of the overlay's whole DAG, from ``snakemake -n`` in an empty directory."""
    with tempfile.TemporaryDirectory() as tmp:
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "snakemake",
                "-s",
                str(REPO / "Snakefile"),
                "-n",
                "--quiet",
                "rules",
                "--directory",
                tmp,
                "--configfile",
                str(overlay),
            ],
            capture_output=True,
            text=True,
            check=True,
        )
    counts = {}
    for line in proc.stdout.splitlines():
        m = re.fullmatch(r"([a-z_]+)\s+(\d+)", line.strip())
        if m and m.group(1) not in ("total", "all"):
            counts[m.group(1)] = int(m.group(2))
    return counts


def seconds_per_call(fn: Callable[[], Any], min_time: float, device: torch.device) -> float:
    """Mean seconds of ``fn`` over at least ``min_time`` after one warm-up call."""
    fn()
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    sync()
    calls, start = 0, time.perf_counter()
    while time.perf_counter() - start < min_time or calls < 2:
        fn()
        calls += 1
    sync()
    return (time.perf_counter() - start) / calls


def network(dataset: str, settings: dict[str, Any], device: torch.device) -> torch.nn.Module:
    spec = ModelSpec(settings["arch"], SHAPES[dataset], 10, settings.get("width", 1.0))
    return build_model(spec).to(device, memory_format=torch.channels_last)


def train_step_seconds(
    model: torch.nn.Module, batch: int, device: torch.device, min_time: float
) -> float:
    x = torch.rand(batch, *model.spec.in_shape, device=device)
    y = torch.randint(0, 10, (batch,), device=device)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    model.train()

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        torch.nn.functional.cross_entropy(model(x), y).backward()
        opt.step()

    return seconds_per_call(step, min_time, device)


def forward_rate(
    model: torch.nn.Module, batch: int, device: torch.device, min_time: float
) -> float:
    x = torch.rand(batch, *model.spec.in_shape, device=device)
    model.eval()

    def forward() -> None:
        with torch.inference_mode():
            model(x)

    return batch / seconds_per_call(forward, min_time, device)


def candidate_rate(
    model: torch.nn.Module,
    section: dict[str, Any],
    pixels: int,
    device: torch.device,
    min_time: float,
) -> tuple[float, str]:
    """Candidates per second of the evaluator the engine builds (``evaluation: auto``).

    Scores a full chunk of random ``pixels``-pixel candidates on 8 random clean images, at the
    config's ``forward_batch`` on a GPU and at ``forward_batch: auto`` on the CPU (the config's
    batch is meant for a GPU).
    """
    model.eval()
    c, h, w = model.spec.in_shape
    generator = torch.Generator().manual_seed(0)
    clean = torch.rand(8, c, h, w, generator=generator).to(device)
    evaluator, used, _ = build_evaluator(
        model,
        clean,
        pixels=pixels,
        evaluation=section.get("evaluation", "auto"),
        forward_batch=section["forward_batch"] if device.type == "cuda" else "auto",
        device=device,
        fitness_dtype=torch.float32,
    )
    batch = evaluator.forward_batch
    rng = np.random.default_rng(0)
    pheno = Phenotype(
        rng.integers(0, h, (batch, pixels)),
        rng.integers(0, w, (batch, pixels)),
        rng.integers(0, 256, (batch, pixels, c)).astype(np.uint8),
    )
    index = np.arange(batch) % len(clean)

    def score() -> None:
        with torch.inference_mode():
            evaluator._chunk_logits(index, pheno, False)

    return batch / seconds_per_call(score, min_time, device), used


def evolution_run_seconds(encoding: str, fooling: dict[str, Any], device: torch.device) -> float:
    """One whole MAP-Elites run against a full-width LeNet, as an evolution job runs it."""
    lenet = network("mnist", {"arch": "lenet"}, device).eval()
    enc = DirectEncoding(28, 28) if encoding == "direct" else CPPNEncoding(28, 28)
    me = MapElites(lenet, enc, 10, batch_size=fooling["population"], seed=0)
    start = time.perf_counter()
    me.run(fooling["generations"])
    return time.perf_counter() - start


def startup_seconds() -> float:
    """What a rule script pays before it starts: a fresh Python importing torch and evofool."""
    code = "import torch, pandas, evofool.fooling, evofool.one_pixel, evofool.retraining"
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True)
    return time.perf_counter() - start


def estimate(
    config: dict[str, Any], counts: dict[str, int], device: torch.device, min_time: float
) -> tuple[list[dict], dict]:
    """Seconds per job of every network-bound rule; other rules get the start-up only."""
    measured: dict[str, Any] = {"startup_s": startup_seconds()}
    log(f"start-up of a rule script: {measured['startup_s']:.1f} s")
    per_job: dict[str, float] = {}
    notes: dict[str, str] = {}

    train = []
    for dataset, nets in config["networks"].items():
        for name, s in nets.items():
            model = network(dataset, s, device)
            step = train_step_seconds(model, s.get("batch_size", 64), device, min_time)
            steps = s["epochs"] * math.ceil(TRAIN_IMAGES[dataset] / s.get("batch_size", 64))
            train.append(
                {
                    "net": f"{dataset}/{name}",
                    "step_s": step,
                    "job_s": step * steps * len(s.get("seeds", [0])),
                }
            )
            log(f"train {dataset}/{name}: {1000 * step:.1f} ms per step, {steps} steps")
    measured["train"] = train
    n_train_jobs = sum(
        len(s.get("seeds", [0])) for nets in config["networks"].values() for s in nets.values()
    )
    per_job["train_model"] = sum(t["job_s"] for t in train) / max(n_train_jobs, 1)
    notes["train_model"] = "mean over the config's networks: seconds per step x epochs x steps"

    o = config["one_pixel"]
    queries = o["popsize"] * (o["generations"] + 1)
    forward, rates = {}, {}
    for key in o["models"]:
        dataset, net = key.split("/")
        model = network(dataset, config["networks"][dataset][net], device)
        forward[key] = forward_rate(model, o["forward_batch"], device, min_time)
        log(f"forward {key}: {forward[key]:,.0f} images/s at batch {o['forward_batch']}")
        for d in o["pixels"]:
            rate, used = candidate_rate(model, o, d, device, min_time)
            rates[f"{key} d={d}"] = {"candidates_per_s": rate, "evaluation": used}
            log(f"  d={d}: {rate:,.0f} candidates/s ({used}, {rate / forward[key]:.2f}x)")
    measured["forward_images_per_s"] = forward
    measured["candidates_per_s"] = rates
    shard_s = [
        (9 if p == "targeted" else 1)
        * o["chunk_size"]
        * protocol_queries(o, p, d, m.split("/")[0])
        / rates[f"{m} d={d}"]["candidates_per_s"]
        for m in o["models"]
        for d in o["pixels"]
        for p in o["protocols"]
    ]
    per_job["attack_one_pixel"] = sum(shard_s) / len(shard_s)
    notes["attack_one_pixel"] = (
        f"{queries:,} queries per attack (no early stop; budgets {o.get('budgets', {})}), "
        "evaluation 'auto', mean over networks, d and protocols"
    )

    runs = {
        e: evolution_run_seconds(e, config["fooling"], device)
        for e in config["fooling"]["encodings"]
    }
    measured["evolution_run_s"] = runs
    log("evolution run: " + ", ".join(f"{e} {s:.1f} s" for e, s in runs.items()))
    per_job["evolve_fooling_images"] = sum(runs.values()) / len(runs)
    notes["evolve_fooling_images"] = "one whole run, measured"
    r = config["retraining"]
    retrain_run = runs.get(r["encoding"]) or evolution_run_seconds(r["encoding"], r, device)
    per_job["evolve_retraining_runs"] = r["runs_per_job"] * retrain_run
    notes["evolve_retraining_runs"] = f"{r['runs_per_job']} whole {r['encoding']} runs per job"
    lenet = next(t for t in train if t["net"] == "mnist/lenet")
    extra = r["first_round_images"] + r["later_round_images"] * max(r["rounds"] - 2, 0) / 2
    per_job["retrain_model"] = (
        lenet["job_s"]
        / len(config["networks"]["mnist"]["lenet"].get("seeds", [0]))
        * (1 + extra / TRAIN_IMAGES["mnist"])
    )
    notes["retrain_model"] = "LeNet training on MNIST plus the mean number of fooling images"

    rows = []
    for rule, jobs in sorted(counts.items()):
        seconds = per_job.get(rule, 0.0) + measured["startup_s"]
        stage = next((s for s, rules in STAGES.items() if rule in rules), "tables and figures")
        rows.append(
            {
                "stage": stage,
                "rule": rule,
                "jobs": jobs,
                "seconds_per_job": seconds,
                "hours": jobs * seconds / 3600,
                "how": notes.get(rule, "start-up only"),
            }
        )
    return rows, measured


def print_tables(rows: list[dict], device: str, threads: int) -> None:
    print(f"\nPaper-scale jobs and {device} hours ({threads} thread(s) per job)\n")
    print("| stage | rule | jobs | s per job | hours | how |")
    print("|---|---|---:|---:|---:|---|")
    for r in sorted(rows, key=lambda r: (r["stage"], -r["hours"])):
        cells = [r["stage"], r["rule"], r["jobs"], f"{r['seconds_per_job']:,.0f}"]
        print("| " + " | ".join(map(str, cells)) + f" | {r['hours']:,.1f} | {r['how']} |")
    print("\n| stage | jobs | hours |")
    print("|---|---:|---:|")
    stages: dict[str, list[float]] = {}
    for r in rows:
        stages.setdefault(r["stage"], [0, 0.0])
        stages[r["stage"]][0] += r["jobs"]
        stages[r["stage"]][1] += r["hours"]
    for stage, (jobs, hours) in sorted(stages.items()):
        print(f"| {stage} | {jobs} | {hours:,.1f} |")
    jobs, hours = sum(v[0] for v in stages.values()), sum(v[1] for v in stages.values())
    print(f"| total | {jobs} | {hours:,.1f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--configfile", type=Path, default=REPO / "configs" / "paper.yaml")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--min-time", type=float, default=2.0, help="seconds per measurement")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    counts = job_counts(args.configfile)
    log(f"{sum(counts.values())} jobs in the dry run of {args.configfile.name}")
    rows, measured = estimate(paper_config(args.configfile), counts, device, args.min_time)
    print_tables(rows, args.device, args.threads)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    result = {
        "command": " ".join([Path(sys.argv[0]).as_posix(), *sys.argv[1:]]),
        "configfile": str(args.configfile),
        "device": args.device,
        "threads": args.threads,
        "jobs": counts,
        "rows": rows,
        "measured": measured,
        **environment(),
    }
    OUT.write_text(json.dumps(result, indent=2, default=str) + "\n")
    log(f"wrote {OUT}")


if __name__ == "__main__":
    main()
