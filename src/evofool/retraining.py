"""Retraining rounds (FOOL Sections 3.6-3.8, Fig. 11): fooling images as an extra class.

Round 1 is the trained network DNN_1. Round r + 1 trains DNN_{r+1} on the dataset of round r
plus the fooling images sampled from the *source* runs evolved against DNN_r, all labelled with
one extra class ("fooling", index n): the fooling images of every earlier round stay in it.
Every round is also attacked by fresh *evaluation* runs, whose best confidences are compared
across rounds; their sampled images are the held-out fooling images of the next round.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from evofool.errors import EvofoolError
from evofool.evolution import MapElites
from evofool.fooling import evolve
from evofool.io import load_artifact, save_artifact
from evofool.plan import FOOLING_CLASS
from evofool.train import predict_logits


def sample_run_images(me: MapElites, n: int, seed: int) -> torch.Tensor:
    """``n`` uint8 images of a finished run: half from its first generation, half from its last.

    Drawn without replacement within each generation; with an odd ``n`` the last generation
    gives one more.
    """
    if me.first_images is None or me.last_images is None:
        raise EvofoolError("the run has no generations yet: cannot sample its images")
    rng = np.random.default_rng(seed)
    n_first = n // 2
    parts = []
    for pool, k in ((me.first_images, n_first), (me.last_images, n - n_first)):
        if k > len(pool):
            raise EvofoolError(
                f"images_per_run asks {k} images of one generation but a generation has only "
                f"{len(pool)}: lower retraining.images_per_run or raise the population"
            )
        parts.append(pool[torch.from_numpy(rng.choice(len(pool), size=k, replace=False))])
    return torch.cat(parts)


def fooling_class_index(classes: Sequence[str]) -> int:
    """Index of the fooling class in ``classes``: the existing one, or a new last class."""
    classes = list(classes)
    return classes.index(FOOLING_CLASS) if FOOLING_CLASS in classes else len(classes)


def extend_dataset(data: Mapping[str, Any], images: torch.Tensor) -> dict[str, Any]:
    """The dataset with ``images`` (uint8, N x C x H x W) added to its training set as fooling.

    The fooling class is appended on first use and reused afterwards, so every round's images
    share one extra class. The test set is unchanged.
    """
    shape = tuple(data["x_train"].shape[1:])
    if images.dtype != torch.uint8 or tuple(images.shape[1:]) != shape:
        raise EvofoolError(
            f"fooling images must be uint8 of shape (N, *{shape}), "
            f"got {images.dtype} {tuple(images.shape)}"
        )
    classes = list(data["classes"])
    label = fooling_class_index(classes)
    if label == len(classes):
        classes.append(FOOLING_CLASS)
    out = dict(data)
    out["x_train"] = torch.cat([data["x_train"], images])
    out["y_train"] = torch.cat(
        [data["y_train"], torch.full((len(images),), label, dtype=data["y_train"].dtype)]
    )
    out["classes"] = classes
    return out


def oversampled(data: Mapping[str, Any], factor: int) -> dict[str, Any]:
    """Training data with every fooling-class image repeated ``factor`` times (factor >= 1)."""
    if factor < 1:
        raise ValueError(f"oversample factor must be at least 1, got {factor}")
    if factor == 1 or FOOLING_CLASS not in data["classes"]:
        return dict(data)
    label = list(data["classes"]).index(FOOLING_CLASS)
    keep = data["y_train"] == label
    extra_x = data["x_train"][keep].repeat(factor - 1, 1, 1, 1)
    extra_y = data["y_train"][keep].repeat(factor - 1)
    out = dict(data)
    out["x_train"] = torch.cat([data["x_train"], extra_x])
    out["y_train"] = torch.cat([data["y_train"], extra_y])
    return out


def share_labelled_fooling(model: nn.Module, images: torch.Tensor, classes: Sequence[str]) -> float:
    """Share of ``images`` that ``model`` labels as the fooling class (NaN if it has none)."""
    if FOOLING_CLASS not in classes or len(images) == 0:
        return float("nan")
    model.eval()
    pred = predict_logits(model, images).argmax(1)
    return float((pred == list(classes).index(FOOLING_CLASS)).float().mean())


def clean_accuracy(model: nn.Module, data: Mapping[str, Any]) -> float:
    """Top-1 accuracy on the original test set, a fooling-class prediction counting as wrong."""
    model.eval()
    pred = predict_logits(model, data["x_test"]).argmax(1)
    return float((pred == data["y_test"]).float().mean())


def run_record(me: MapElites, images_per_run: int, seed: int) -> dict[str, Any]:
    """What a finished run contributes: best confidences, final elites and sampled images."""
    elites = (me.archive.images.nan_to_num(0.0).clamp(0, 1) * 255).round().to(torch.uint8)
    return {
        "seed": me.seed,
        "confidences": me.archive.confidences,
        "filled": me.archive.filled,
        "elites": elites,
        "sample": sample_run_images(me, images_per_run, seed),
    }


def evolve_shard(
    model: nn.Module,
    encoding: Any,
    classes: Sequence[str],
    runs: Sequence[int],
    seeds: Sequence[int],
    *,
    generations: int,
    population: int,
    images_per_run: int,
    checkpoint_dir: str | Path,
    fingerprint: Mapping[str, Any],
    checkpoint_every: int = 50,
    log: Callable[[str], None] = print,
) -> list[dict[str, Any]]:
    """Evolve ``runs`` one after another; every finished run is kept, so a killed job resumes.

    ``checkpoint_dir`` holds the finished runs and the running one's checkpoint; it is wiped when
    its ``fingerprint`` (settings, seeds, the scored model's digest) differs from this call's.
    The fooling class, when ``classes`` has one, is never a target.
    """
    directory = Path(checkpoint_dir)
    done_path = directory / "finished.pt"
    fingerprint = dict(fingerprint, runs=list(runs), seeds=list(seeds))
    state = load_artifact(done_path) if done_path.exists() else None
    if state is None or state.get("fingerprint") != fingerprint:
        shutil.rmtree(directory, ignore_errors=True)
        state = {"fingerprint": fingerprint, "runs": {}}
    elif state["runs"]:
        log(f"resuming: runs {sorted(state['runs'])} already finished")
    exclude = [classes.index(FOOLING_CLASS)] if FOOLING_CLASS in classes else []
    for run, seed in zip(runs, seeds, strict=True):
        if run in state["runs"]:
            continue
        log(f"run {run} (seed {seed})")
        me = evolve(
            model,
            encoding,
            len(classes),
            generations=generations,
            population=population,
            insertion="all",
            seed=seed,
            exclude_classes=exclude,
            checkpoint=directory / f"run={run}.pt",
            checkpoint_every=checkpoint_every,
            log=log,
        )
        state["runs"][run] = run_record(me, images_per_run, seed)
        save_artifact(state, done_path)
        (directory / f"run={run}.pt").unlink(missing_ok=True)
    return [state["runs"][run] for run in runs]


def load_records(paths: Sequence[str | Path]) -> list[dict[str, Any]]:
    """The run records of run-shard files, in file and run order."""
    return [record for path in paths for record in load_artifact(path)["records"]]


def fooling_images(records: Sequence[Mapping[str, Any]], n: int) -> torch.Tensor:
    """The first ``n`` sampled images of a round's source runs, in run order."""
    images = torch.cat([r["sample"] for r in records])
    if len(images) < n:
        raise EvofoolError(f"the source runs gave {len(images)} images, fewer than the {n} asked")
    return images[:n]


def record_elite_rows(records: Sequence[Mapping[str, Any]], classes: Sequence[str], **columns: Any):
    """One row per (run, original class) of evaluation runs: the best confidence reached."""
    rows = []
    for run, r in enumerate(records):
        for k, name in enumerate(classes):
            if name == FOOLING_CLASS:
                continue
            conf = float(r["confidences"][k])
            rows.append({**columns, "run": run, "class": name, "confidence": conf})
    frame = pd.DataFrame(rows)
    frame["confidence"] = frame["confidence"].fillna(0.0)
    return frame
