"""The fooling-image experiments: runs, their tables, transfer and statistics (FOOL)."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from evofool import metrics
from evofool.errors import EvofoolError
from evofool.evolution import CPPNEncoding, DirectEncoding, MapElites, class_confidence
from evofool.models import Classifier, CropAveraged
from evofool.targets import path_wildcards

ENCODINGS = ("direct", "cppn")
INSERTIONS = ("all", "top_class")


def make_encoding(
    name: str, settings: Mapping[str, Any], image_shape: Sequence[int]
) -> DirectEncoding | CPPNEncoding:
    """The encoding ``name`` for images of ``image_shape`` (C, H, W) with the config's settings."""
    channels, height, width = image_shape
    color = settings.get("color", "gray")
    if (color == "gray") != (channels == 1):
        raise EvofoolError(
            f"fooling.color {color!r} does not fit {channels}-channel images: "
            f"use {'gray' if channels == 1 else 'hsv'}"
        )
    if name == "direct":
        return DirectEncoding(
            height, width, color=color, mutation_rate=settings.get("mutation_rate", 0.1),
            halving_period=settings.get("halving_period"),
        )  # fmt: skip
    if name == "cppn":
        return CPPNEncoding(height, width, color=color)
    raise EvofoolError(f"unknown encoding {name!r}: choose one of {ENCODINGS}")


def scoring_network(model: Classifier, settings: Mapping[str, Any]) -> nn.Module:
    """The network a run's images are scored by.

    The model itself, or, when the settings give an ``image_size`` (FOOL's 256x256 ImageNet
    images), the mean softmax of the model over ``crops`` crops of its input size.
    """
    size = settings.get("image_size")
    if size is None:
        return model
    return CropAveraged(model, (size, size), settings.get("crops", 1))


def run_seed(study_seed: int, encoding: str, insertion: str, run: int) -> int:
    """Seed of one run, derived from the study seed and what identifies the run."""
    key = [study_seed, ENCODINGS.index(encoding), INSERTIONS.index(insertion), run]
    return int(np.random.SeedSequence(key).generate_state(1)[0])


def _resumable(path: Path, expected: MapElites, model: nn.Module) -> MapElites | None:
    """A checkpoint of the same run (same seed, encoding and settings), or None."""
    if not path.exists():
        return None
    try:
        saved = MapElites.load(path, scorer=model)
    except (EvofoolError, ValueError, KeyError):
        return None
    same = (
        saved.seed == expected.seed
        and saved.batch_size == expected.batch_size
        and saved.insertion == expected.insertion
        and saved.exclude_classes == expected.exclude_classes
        and saved.encoding.config() == expected.encoding.config()
    )
    return saved if same else None


def evolve(
    model: nn.Module,
    encoding: DirectEncoding | CPPNEncoding,
    n_classes: int,
    *,
    generations: int,
    population: int,
    insertion: str,
    seed: int,
    exclude_classes: Sequence[int] = (),
    checkpoint: str | Path | None = None,
    checkpoint_every: int = 50,
    log: Callable[[str], None] = print,
) -> MapElites:
    """One MAP-Elites run, saved every ``checkpoint_every`` generations and resumed if killed.

    A resumed run ends with the same archive as an uninterrupted one: the checkpoint holds the
    generators' states.
    """
    me = MapElites(
        model, encoding, n_classes, batch_size=population, insertion=insertion,
        exclude_classes=exclude_classes, seed=seed,
    )  # fmt: skip
    if checkpoint is not None:
        checkpoint = Path(checkpoint)
        resumed = _resumable(checkpoint, me, model)
        if resumed is not None:
            me = resumed
            log(f"resumed from checkpoint at generation {me.generation}")
    while me.generation < generations:
        me.run(min(checkpoint_every, generations - me.generation))
        conf = me.archive.confidences
        log(
            f"generation {me.generation}/{generations}: median best confidence "
            f"{float(conf.nanmedian()):.4f}, {int(me.archive.filled.sum())} classes filled"
        )
        if checkpoint is not None and me.generation < generations:
            me.save(checkpoint)
    return me


def elite_rows(me: MapElites, **columns: Any) -> pd.DataFrame:
    """One row per class of a run's final archive: confidence and generation found."""
    conf = me.archive.confidences.numpy()
    frame = pd.DataFrame(
        {
            "class": np.arange(len(conf)),
            "confidence": conf,
            "generation_found": me.archive.generations.numpy(),
            "excluded": [k in me.exclude_classes for k in range(len(conf))],
        }
    )
    for i, (name, value) in enumerate(columns.items()):
        frame.insert(i, name, value)
    return frame


def history_rows(me: MapElites, max_generations: int = 500, **columns: Any) -> pd.DataFrame:
    """Best confidence per class after each generation, long format.

    Runs longer than ``max_generations`` (FOOL's 20,000 ImageNet generations) keep every k-th
    generation and the last, so the table stays small: at most about ``max_generations`` rows
    per class.
    """
    full = me.history.numpy()
    step = max(1, math.ceil(len(full) / max_generations))
    kept = np.arange(len(full) - 1, -1, -step)[::-1]  # every step-th, ending with the last
    hist = full[kept]
    gens, classes = np.meshgrid(kept + 1, np.arange(full.shape[1]), indexing="ij")
    frame = pd.DataFrame(
        {"generation": gens.ravel(), "class": classes.ravel(), "confidence": hist.ravel()}
    )
    for i, (name, value) in enumerate(columns.items()):
        frame.insert(i, name, value)
    return frame


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
                    "dataset": key[0], "net": key[1], "model_seed": key[2], "insertion": key[3],
                    "median_direct": 100 * float(np.median(by["direct"])),
                    "median_cppn": 100 * float(np.median(by["cppn"])), **test,
                }
            )  # fmt: skip
    return pd.DataFrame(rows)


def transfer_rows(
    me: MapElites, other: nn.Module, other_name: str, relation: str, **columns: Any
) -> pd.DataFrame:
    """Confidence of another network in each final elite's class."""
    filled = me.archive.filled_classes
    images = me.archive.images[filled]
    conf = class_confidence(other, images, torch.tensor(filled))
    frame = pd.DataFrame(
        {
            "class": filled,
            "source_confidence": me.archive.confidences[filled].numpy(),
            "target": other_name,
            "relation": relation,
            "target_confidence": conf.numpy(),
        }
    )
    for i, (name, value) in enumerate(columns.items()):
        frame.insert(i, name, value)
    return frame


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
                "dataset": key.get("dataset"), "net": key.get("net"),
                "model_seed": int(key.get("seed", 0)), "class": name,
                "confidence": float(r["confidences"][k]), "steps": r["steps"],
                "decay": r["decay"],
            }  # fmt: skip
            for t, step in zip(r["thresholds"], r["steps_to"][k].tolist(), strict=True):
                row[f"step_to_{100 * t:g}"] = step
            rows.append(row)
    return pd.DataFrame(rows)
