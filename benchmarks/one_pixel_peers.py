"""The peers of the one-pixel benchmark: torchattacks' and ART's one-pixel attacks, timed.

Both copy SciPy's differential evolution; they run here with the paper's budget on the same
images as the engine, through a model wrapper that counts the images they forward. Used by
``benchmarks/one_pixel.py`` (part 2, side by side).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from common import log
from torch import nn

TORCHATTACKS_INF_BATCH = 128  # torchattacks' documented default
ART_PREDICT_BATCH = 128  # PyTorchClassifier.predict's default; PixelAttack does not change it


class CountingModel(nn.Module):
    """Passes images through ``model`` and counts them (and the forward calls).

    Args:
        model: Any module mapping images to logits.
    """

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model
        self.images = 0
        self.calls = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.images += int(x.shape[0])
        self.calls += 1
        return self.model(x)


def scipy_population(popsize_multiplier: int, n_params: int) -> int:
    """Population of the SciPy-derived DE both peers copy: ``max(5, popsize * len(x))``."""
    return max(5, popsize_multiplier * n_params)


def judge(model: nn.Module, adv: torch.Tensor, labels: torch.Tensor) -> np.ndarray:
    """Non-targeted success of final images: top-1 (float32) is not the true class."""
    with torch.inference_mode():
        pred = model(adv.float()).argmax(1)
    return (pred != labels).numpy()


def side_row(
    attack: str,
    config: dict,
    wall: float,
    success: np.ndarray,
    forwarded: int,
    queries: float,
    limit: float,
) -> dict:
    n = len(success)
    return {
        "attack": attack,
        "config": config,
        "attacks": n,
        "successes": int(success.sum()),
        "success_rate": round(float(success.mean()), 4),
        "seconds": round(wall, 2),
        "seconds_per_attack": round(wall / n, 3),
        "forwarded_images_per_attack": round(forwarded / n, 1),
        "queries_per_attack": round(queries, 1),
        "forwarded_images_per_second": round(forwarded / wall, 1),
        "share_of_fp32_forward_limit": round(forwarded / wall / limit, 3),
    }


def run_torchattacks(
    model: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    args: argparse.Namespace,
    limit: float,
) -> dict:
    import torchattacks

    channels = images.shape[1]
    n_params = 2 + channels
    counter = CountingModel(model).eval()
    attack = torchattacks.OnePixel(
        counter,
        pixels=1,
        steps=args.generations,
        popsize=args.popsize,
        inf_batch=TORCHATTACKS_INF_BATCH,
    )
    np.random.seed(0)  # its DE draws from NumPy's global generator; it takes no seed
    torch.manual_seed(0)
    t0 = time.perf_counter()
    adv = attack(images, labels)
    wall = time.perf_counter() - t0
    population = scipy_population(max(1, int(args.popsize / n_params)), n_params)
    config = {
        "call": (
            f"torchattacks.OnePixel(model, pixels=1, steps={args.generations}, "
            f"popsize={args.popsize}, inf_batch={TORCHATTACKS_INF_BATCH})(images, labels)"
        ),
        "version": torchattacks.__version__,
        "images_per_call": len(images),
        "effective_population": population,
        "population_note": (
            f"popsize is divided by len(bounds) = 2 + channels = {n_params} (int) and SciPy "
            f"multiplies it back: {args.popsize} -> {population}"
        ),
        "de": "SciPy-derived best1bin, F ~ U(0.5, 1) per generation, recombination=1, "
        "init='random' (uniform), atol=-1, polish=False; continuous colours",
        "early_stop": "callback after each generation: top-1 of the population's best != label "
        "(one extra forward per generation)",
        "max_forwarded_per_attack": population * (args.generations + 1) + args.generations,
        "seeding": "np.random.seed(0) and torch.manual_seed(0) before the call",
    }
    success = judge(model, adv, labels)
    log(f"  torchattacks: {wall:.1f} s, {int(success.sum())}/{len(images)} successes")
    return side_row(
        "torchattacks OnePixel",
        config,
        wall,
        success,
        counter.images,
        counter.images / len(images),
        limit,
    )


class _Softmax(nn.Module):
    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.model(x), dim=1)


def run_art(
    model: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    n_classes: int,
    args: argparse.Namespace,
    limit: float,
) -> dict:
    import art
    from art.attacks.evasion import PixelAttack
    from art.estimators.classification import PyTorchClassifier

    channels = images.shape[1]
    n_params = 2 + channels
    counter = CountingModel(model).eval()
    classifier = PyTorchClassifier(
        model=_Softmax(counter).eval(),
        loss=nn.CrossEntropyLoss(),
        input_shape=tuple(images.shape[1:]),
        nb_classes=n_classes,
        clip_values=(0.0, 1.0),
        channels_first=True,
        device_type="cpu",
    )
    attack = PixelAttack(classifier, th=1, es=1, max_iter=args.generations, targeted=False)
    x = images.numpy().astype(np.float32)
    y = labels.numpy()
    np.random.seed(0)  # its DE copy draws from NumPy's global generator; it takes no seed
    torch.manual_seed(0)
    t0 = time.perf_counter()
    adv = attack.generate(x, y)
    wall = time.perf_counter() - t0
    population = scipy_population(max(1, 400 // n_params), n_params)
    config = {
        "call": (
            "art.attacks.evasion.PixelAttack(PyTorchClassifier(softmax(model), "
            "clip_values=(0, 1), channels_first=True), th=1, es=1, "
            f"max_iter={args.generations}, targeted=False).generate(x, y=labels)"
        ),
        "version": art.__version__,
        "images_per_call": len(images),
        "predict_batch_size": ART_PREDICT_BATCH,
        "effective_population": population,
        "population_note": (
            f"fixed by ART at 400 // (2 + channels) * (2 + channels) = {population}; "
            "--popsize does not reach it"
        ),
        "fitness": "softmax probability of the true class (the classifier returns softmax)",
        "de": "ART's SciPy-derived copy: best1bin, F ~ U(0.5, 1) per generation, "
        "recombination=1, init='latinhypercube', atol=-1, polish=False; colours 0-255 cast to int",
        "early_stop": "callback after each generation: top-1 of the population's best != label "
        "(one extra forward per generation, one more at the end)",
        "max_forwarded_per_attack": population * (args.generations + 1) + args.generations + 1,
        "seeding": "np.random.seed(0) and torch.manual_seed(0) before the call",
    }
    success = judge(model, torch.from_numpy(adv), labels)
    log(f"  ART: {wall:.1f} s, {int(success.sum())}/{len(images)} successes")
    return side_row(
        "ART PixelAttack",
        config,
        wall,
        success,
        counter.images,
        counter.images / len(images),
        limit,
    )
