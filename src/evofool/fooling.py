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

from evofool.errors import EvofoolError
from evofool.evolution import (
    ENCODING_CLASSES,
    CPPNEncoding,
    DirectEncoding,
    MapElites,
    class_confidence,
)
from evofool.models import Classifier, CropAveraged
from evofool.plan import ENCODINGS
from evofool.tables import with_leading_columns
from evofool.targets import path_wildcards


def make_encoding(
    name: str, settings: Mapping[str, Any], image_shape: Sequence[int]
) -> DirectEncoding | CPPNEncoding:
    """The encoding ``name`` for images of ``image_shape`` (C, H, W) with the config's settings.

    ``settings`` holds at least the keys of :data:`evofool.plan.ENCODING_SETTINGS`; each
    encoding takes those of them it names in its ``SETTING_KEYS``.
    """
    channels, height, width = image_shape
    color = settings["color"]
    if (color == "gray") != (channels == 1):
        raise EvofoolError(
            f"fooling.color {color!r} does not fit {channels}-channel images: "
            f"use {'gray' if channels == 1 else 'hsv'}"
        )
    if name not in ENCODING_CLASSES:
        raise EvofoolError(f"unknown encoding {name!r}: choose one of {ENCODINGS}")
    cls = ENCODING_CLASSES[name]
    return cls(height, width, **{k: settings[k] for k in cls.SETTING_KEYS})


def scoring_network(model: Classifier, settings: Mapping[str, Any]) -> nn.Module:
    """The network a run's images are scored by.

    The model itself, or, when the settings give an ``image_size`` (FOOL's 256x256 ImageNet
    images), the mean softmax of the model over ``crops`` crops of its input size.
    """
    if "image_size" not in settings:
        return model
    size = settings["image_size"]
    return CropAveraged(model, (size, size), settings["crops"])


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
        and saved.encoding.spec() == expected.encoding.spec()
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
        model,
        encoding,
        n_classes,
        batch_size=population,
        insertion=insertion,
        exclude_classes=exclude_classes,
        seed=seed,
    )
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


def run_columns(run_path: str | Path) -> dict[str, Any]:
    """The columns that identify a run in the tables, read from its file's path."""
    key = path_wildcards(run_path)
    return {
        "dataset": key["dataset"],
        "net": key["net"],
        "model_seed": int(key["seed"]),
        "encoding": key["encoding"],
        "insertion": key["insertion"],
        "run": int(key["run"]),
    }


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
    return with_leading_columns(frame, columns)


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
    return with_leading_columns(frame, columns)


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
    return with_leading_columns(frame, columns)
