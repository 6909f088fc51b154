"""The one-pixel experiments: choosing images, sharding attacks, and the paper's tables.

Protocols (OPA Section IV-V): ``targeted`` attacks every image towards each other class (its
results also give "non-targeted 1": success on at least one target); ``nontargeted`` runs the
true non-targeted attack (fitness p(true), "non-targeted 2"); ``random`` is random search at the
same query budget, non-targeted (Table VII).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from evofool import metrics
from evofool.attacks import AttackResult, one_pixel_attack
from evofool.data import to_float
from evofool.errors import EvofoolError
from evofool.train import predict_logits

PROTOCOLS = ("targeted", "nontargeted", "random")


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


def n_images(settings: Mapping[str, Any], protocol: str) -> int:
    """Images a protocol attacks."""
    return settings["targeted_images" if protocol == "targeted" else "nontargeted_images"]


def images_needed(settings: Mapping[str, Any]) -> int:
    """Images to select for the protocols ``settings`` runs (the most any of them attacks)."""
    return max(n_images(settings, p) for p in settings["protocols"])


def n_shards(settings: Mapping[str, Any], protocol: str) -> int:
    """Shards of a protocol: its images in chunks of ``chunk_size``."""
    return math.ceil(n_images(settings, protocol) / settings["chunk_size"])


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


def run_shard(
    model: nn.Module,
    selection: Mapping[str, Any],
    protocol: str,
    shard: int,
    settings: Mapping[str, Any],
    *,
    seed: int,
    pixels: int,
    device: torch.device,
    progress: Callable[[int, int], None] | None = None,
) -> AttackResult:
    """Attack one shard of a protocol's images with the configured budget."""
    if protocol not in PROTOCOLS:
        raise EvofoolError(f"unknown protocol {protocol!r}: choose one of {PROTOCOLS}")
    n_classes = len(selection["classes"])
    plan = shard_plan(
        selection, protocol, shard, settings["chunk_size"], n_images(settings, protocol), n_classes
    )
    targeted = protocol == "targeted"
    return one_pixel_attack(
        model,
        plan["images"],
        plan["labels"],
        targets=plan["targets"],
        image_ids=plan["image_ids"],
        pixels=pixels,
        popsize=settings["popsize"],
        generations=settings["generations"],
        mutation=settings["mutation"],
        optimizer="random" if protocol == "random" else "de",
        stop=settings["targeted_stop" if targeted else "nontargeted_stop"],
        stop_threshold=settings.get("targeted_threshold" if targeted else "nontargeted_threshold"),
        seed=seed,
        forward_batch=settings["forward_batch"],
        fitness_dtype=settings["fitness_dtype"],
        device=device,
        progress=progress,
    )


def tidy(results: Sequence[AttackResult], **columns: Any) -> pd.DataFrame:
    """One row per attack of all shards, with identifying columns first."""
    frame = AttackResult.concat(list(results)).to_frame()
    for i, (name, value) in enumerate(columns.items()):
        frame.insert(i, name, value)
    return frame


def _model_key(frame: pd.DataFrame) -> tuple:
    row = frame.iloc[0]
    return row["dataset"], row["net"], int(row["model_seed"]), int(row["pixels"])


def _by_setting(attacks: Sequence[pd.DataFrame]) -> dict[tuple, dict[str, pd.DataFrame]]:
    """Non-empty attack tables keyed by (dataset, net, model_seed, pixels), then by protocol."""
    groups: dict[tuple, dict[str, pd.DataFrame]] = {}
    for frame in attacks:
        if len(frame):
            groups.setdefault(_model_key(frame), {})[frame["protocol"].iloc[0]] = frame
    return groups


def success_table(
    attacks: Sequence[pd.DataFrame], accuracies: Mapping[tuple[str, str, int], float]
) -> pd.DataFrame:
    """OPA Tables IV, V and VIII: one row per (network, pixels), rates with 95% intervals.

    Args:
        attacks: tidy tables of the ``targeted`` and ``nontargeted`` protocols.
        accuracies: clean test accuracy per (dataset, net, model_seed).
    """
    groups = _by_setting(attacks)
    rows = []
    for (dataset, net, seed, pixels), by_protocol in sorted(groups.items()):
        row: dict[str, Any] = {
            "dataset": dataset, "net": net, "model_seed": seed, "pixels": pixels,
            "accuracy": 100 * accuracies[(dataset, net, seed)],
        }  # fmt: skip
        if "targeted" in by_protocol:
            t = by_protocol["targeted"]
            row.update(_prefixed("targeted", metrics.summarize(t)))
            nt1 = metrics.nontargeted_from_targeted(t)
            row.update(_prefixed("nontargeted1", metrics.rate_with_interval(nt1)))
            row["targets_per_image"] = float(t.groupby("image_id")["success"].sum().mean())
        if "nontargeted" in by_protocol:
            row.update(_prefixed("nontargeted2", metrics.summarize(by_protocol["nontargeted"])))
        rows.append(row)
    return pd.DataFrame(rows)


def de_vs_random_table(attacks: Sequence[pd.DataFrame]) -> pd.DataFrame:
    """OPA Table VII: non-targeted DE against random search at the same query budget."""
    groups = _by_setting(attacks)
    rows = []
    for (dataset, net, seed, pixels), by in sorted(groups.items()):
        if not {"nontargeted", "random"} <= set(by):
            continue
        de, rnd = metrics.summarize(by["nontargeted"]), metrics.summarize(by["random"])
        rows.append(
            {
                "dataset": dataset, "net": net, "model_seed": seed, "pixels": pixels,
                **_prefixed("de", de), **_prefixed("random", rnd),
                "difference": de["rate"] - rnd["rate"],
            }
        )  # fmt: skip
    return pd.DataFrame(rows)


def _prefixed(prefix: str, values: Mapping[str, float]) -> dict[str, float]:
    return {f"{prefix}_{k}": v for k, v in values.items()}


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


def fitness_curves(attacks: pd.DataFrame, limit: int = 30) -> np.ndarray:
    """Best-fitness curves ``(k, generations + 1)`` of up to ``limit`` successful attacks."""
    ok = attacks[attacks["success"].astype(bool)].head(limit)
    curves = [[np.nan if v is None else v for v in json.loads(c)] for c in ok["fitness_curve"]]
    if not curves:  # no success: an empty plot, as wide as the budget
        return np.empty((0, int(attacks["generations"].max()) + 1 if len(attacks) else 1))
    return np.array(curves, dtype=float)


def reachable_shares(tables: Sequence[pd.DataFrame], n_classes: int) -> pd.DataFrame:
    """Share of images perturbable to k target classes, per pixel count (long format)."""
    parts = []
    for t in tables:
        if len(t):
            shares = metrics.reachable_targets(t, n_classes)
            parts.append(
                pd.DataFrame(
                    {
                        "k": shares.index,
                        "share": shares.to_numpy(),
                        "setting": f"{int(t['pixels'].iloc[0])} pixel(s)",
                    }
                )  # fmt: skip
            )
    return pd.concat(parts, ignore_index=True)
