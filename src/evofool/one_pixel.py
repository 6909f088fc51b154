"""The one-pixel experiments: choosing images, sharding attacks, tidy rows and example panels.

Protocols (OPA Section IV-V, docs/method.md): ``targeted`` attacks every image towards each
other class (its results also give "non-targeted 1": success on at least one target);
``nontargeted`` runs the true non-targeted attack (fitness p(true), "non-targeted 2"); ``random``
is random search at the same query budget, non-targeted (Table VII); ``corners`` (exhaustive
one-pixel search, CornerSearch for d > 1) and ``sparse_rs`` (Sparse-RS) are the other search
methods, non-targeted on the same images. The tables are built in
:mod:`evofool.tables`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from evofool.attacks import AttackResult, AttackSettings, one_pixel_attack
from evofool.data import to_float
from evofool.errors import EvofoolError
from evofool.plan import PROTOCOL_METHODS, PROTOCOLS, one_pixel_images
from evofool.tables import with_leading_columns
from evofool.train import predict_logits


def select_images(
    model: nn.Module, data: Mapping[str, Any], n_images: int, seed: int
) -> dict[str, Any]:
    """Pick ``n_images`` test images the model classifies correctly, in a seeded random order.

    Returns:
        ``{"index": int64 (n,), "x": uint8 (n, C, H, W), "y": int64 (n,), "accuracy": float,
        "classes": list[str]}``; ``index`` is the test-set index, which seeds each attack.
    """
    logits = predict_logits(model, data["x_test"])
    correct = (logits.argmax(1) == data["y_test"]).numpy()
    order = np.random.default_rng(seed).permutation(len(correct))
    chosen = order[correct[order]][:n_images]
    if len(chosen) < n_images:
        raise EvofoolError(
            f"only {len(chosen)} test images are classified correctly, {n_images} requested: "
            "lower one_pixel.targeted_images / nontargeted_images"
        )
    idx = torch.from_numpy(chosen.astype(np.int64))
    return {
        "index": idx,
        "x": data["x_test"][idx],
        "y": data["y_test"][idx],
        "accuracy": float(correct.mean()),
        "classes": list(data["classes"]),
    }


def shard_plan(
    selection: Mapping[str, Any], protocol: str, shard: int, chunk: int, n: int, n_classes: int
) -> dict[str, torch.Tensor | None]:
    """Images, labels, targets and ids of one shard; a targeted image appears once per target."""
    lo, hi = shard * chunk, min(n, (shard + 1) * chunk)
    if lo >= hi:
        raise EvofoolError(f"shard {shard} is empty ({n} images in chunks of {chunk})")
    x, y, ids = selection["x"][lo:hi], selection["y"][lo:hi], selection["index"][lo:hi]
    if protocol != "targeted":
        return {"images": to_float(x), "labels": y, "targets": None, "image_ids": ids}
    targets = torch.arange(n_classes).expand(len(y), n_classes)
    keep = targets != y[:, None]
    rows = keep.nonzero()[:, 0]
    return {
        "images": to_float(x[rows]),
        "labels": y[rows],
        "targets": targets[keep],
        "image_ids": ids[rows],
    }


def attack_settings(
    section: Mapping[str, Any], protocol: str, *, pixels: int, seed: int
) -> AttackSettings:
    """The engine's settings for one protocol and pixel count, from the config's section.

    ``section`` is one job's settings (:func:`evofool.targets.one_pixel_job_settings`): the
    validated ``one_pixel`` section (or ImageNet's) with the protocol's ``budget`` (None: the
    method's default); every default it holds comes from the schema.
    """
    if protocol not in PROTOCOLS:
        raise EvofoolError(f"unknown protocol {protocol!r}: choose one of {PROTOCOLS}")
    kind = "targeted" if protocol == "targeted" else "nontargeted"
    return AttackSettings(
        targeted=protocol == "targeted",
        pixels=pixels,
        popsize=section["popsize"],
        generations=section["generations"],
        mutation=section["mutation"],
        optimizer=PROTOCOL_METHODS[protocol],
        budget=section.get("budget"),
        stop=section[f"{kind}_stop"],
        stop_threshold=section[f"{kind}_threshold"],
        seed=seed,
        forward_batch=section["forward_batch"],
        fitness_dtype=section["fitness_dtype"],
        evaluation=section["evaluation"],
    )


def run_shard(
    model: nn.Module,
    selection: Mapping[str, Any],
    protocol: str,
    shard: int,
    section: Mapping[str, Any],
    *,
    seed: int,
    pixels: int,
    device: torch.device,
    progress: Callable[[int, int], None] | None = None,
    log: Callable[[str], None] | None = None,
) -> AttackResult:
    """Attack one shard of a protocol's images with the section's budget."""
    settings = attack_settings(section, protocol, pixels=pixels, seed=seed)
    plan = shard_plan(
        selection,
        protocol,
        shard,
        section["chunk_size"],
        one_pixel_images(section, protocol),
        len(selection["classes"]),
    )
    return one_pixel_attack(
        model,
        plan["images"],
        plan["labels"],
        targets=plan["targets"],
        image_ids=plan["image_ids"],
        settings=settings,
        device=device,
        progress=progress,
        log=log,
    )


def tidy(results: Sequence[AttackResult], **columns: Any) -> pd.DataFrame:
    """One row per attack of all shards, with identifying columns first."""
    frame = AttackResult.concat(list(results)).to_frame()
    return with_leading_columns(frame, columns)


def example_panels(
    selection: Mapping[str, Any], attacks: pd.DataFrame, n: int
) -> tuple[torch.Tensor, torch.Tensor, list[tuple[str, str]], list[np.ndarray]]:
    """Clean and adversarial images of up to ``n`` attacks, successful ones first.

    Returns:
        clean ``(k, C, H, W)``, adversarial ``(k, C, H, W)``, captions and changed positions.
    """
    classes = selection["classes"]
    order = attacks.sort_values(["success", "confidence"], ascending=[False, False]).head(n)
    where = {int(i): k for k, i in enumerate(selection["index"].tolist())}
    rows = [where[int(i)] for i in order["image_id"]]
    clean = to_float(selection["x"][rows])
    adversarial = clean.clone()
    positions, captions = [], []
    for k, (_, a) in enumerate(order.iterrows()):
        pos = np.asarray(json.loads(a["positions"]), dtype=np.int64).reshape(-1, 2)
        new = torch.tensor(json.loads(a["new_values"]), dtype=torch.float32).view(len(pos), -1)
        adversarial[k, :, pos[:, 0], pos[:, 1]] = (new / 255.0).T
        positions.append(pos)
        verdict = "" if a["success"] else " (failed)"
        captions.append(
            (
                f"{classes[int(a['label'])]}",
                f"{classes[int(a['final_label'])]} {100 * a['confidence']:.1f}%{verdict}",
            )
        )
    return clean, adversarial, captions, positions
