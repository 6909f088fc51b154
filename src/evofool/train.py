"""Training and evaluation of the study's networks: seeded, resumable, CPU or CUDA."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from evofool.data import to_float
from evofool.devices import configure_cuda, device_identity, has_bfloat16_units
from evofool.errors import EvofoolError
from evofool.io import load_artifact, save_artifact
from evofool.models import Classifier, ModelSpec, build_model, default_normalization

AUGMENTATIONS = ("none", "shift", "crop_flip")
PRECISIONS = ("float32", "bfloat16")
Logger = Callable[[str], None]


@dataclass(frozen=True)
class TrainSettings:
    """Optimiser, schedule and augmentation of one training run."""

    epochs: int = 10
    batch_size: int = 64
    lr: float = 0.01
    momentum: float = 0.9
    weight_decay: float = 5e-4
    optimizer: str = "sgd"
    schedule: str = "cosine"
    augment: str = "none"
    label_smoothing: float = 0.0
    precision: str = "float32"

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any]) -> TrainSettings:
        """Take the fields this class knows from a config mapping."""
        names = cls.__dataclass_fields__
        return cls(**{k: v for k, v in cfg.items() if k in names})


def data_normalization(arch: str, x_train: torch.Tensor) -> tuple[tuple[float, ...], ...]:
    """Per-channel mean and std of the training images, or the architecture's fixed scaling."""
    channels = x_train.shape[1]
    if arch == "lenet":
        return default_normalization(arch, channels)
    x = x_train.float().div(255.0)
    mean = x.mean(dim=(0, 2, 3))
    std = x.std(dim=(0, 2, 3)).clamp_min(1e-3)
    return tuple(round(v, 6) for v in mean.tolist()), tuple(round(v, 6) for v in std.tolist())


def augment_batch(x: torch.Tensor, kind: str, generator: torch.Generator) -> torch.Tensor:
    """Random translation (``shift``: up to 2 px) or pad-4 crop plus horizontal flip, batched.

    Args:
        x: float images ``(N, C, H, W)``.
        kind: one of :data:`AUGMENTATIONS`.
        generator: CPU generator that draws the offsets and flips.
    """
    if kind == "none":
        return x
    if kind not in AUGMENTATIONS:
        raise EvofoolError(f"unknown augmentation {kind!r}: choose one of {AUGMENTATIONS}")
    n, _, h, w = x.shape
    pad = 2 if kind == "shift" else 4
    padded = F.pad(x, (pad, pad, pad, pad))
    dy = torch.randint(0, 2 * pad + 1, (n,), generator=generator).to(x.device)
    dx = torch.randint(0, 2 * pad + 1, (n,), generator=generator).to(x.device)
    rows = (dy[:, None] + torch.arange(h, device=x.device))[:, None, :, None]
    cols = (dx[:, None] + torch.arange(w, device=x.device))[:, None, None, :]
    batch = torch.arange(n, device=x.device)[:, None, None, None]
    chans = torch.arange(x.shape[1], device=x.device)[None, :, None, None]
    out = padded[batch, chans, rows, cols]
    if kind == "crop_flip":
        flip = (torch.rand(n, generator=generator) < 0.5).to(x.device)
        out = torch.where(flip[:, None, None, None], out.flip(-1), out)
    return out


@torch.inference_mode()
def predict_logits(
    model: nn.Module, x: torch.Tensor, batch_size: int = 512, device: torch.device | None = None
) -> torch.Tensor:
    """Logits ``(N, n_classes)`` for uint8 or [0, 1] float images ``(N, C, H, W)``, batched."""
    device = device or next(model.parameters()).device
    outs = []
    for i in range(0, len(x), batch_size):
        xb = x[i : i + batch_size].to(device)
        xb = to_float(xb) if xb.dtype == torch.uint8 else xb.float()
        outs.append(model(xb).float().cpu())
    return torch.cat(outs) if outs else torch.empty(0)


def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 512) -> float:
    """Top-1 accuracy on ``(x, y)``; leaves the model in eval mode."""
    model.eval()
    pred = predict_logits(model, x, batch_size).argmax(1)
    return float((pred == y).float().mean())


def _make_optimizer(model: nn.Module, s: TrainSettings) -> torch.optim.Optimizer:
    if s.optimizer == "sgd":
        return torch.optim.SGD(
            model.parameters(),
            lr=s.lr,
            momentum=s.momentum,
            weight_decay=s.weight_decay,
            nesterov=s.momentum > 0,
        )
    if s.optimizer == "adam":
        return torch.optim.AdamW(model.parameters(), lr=s.lr, weight_decay=s.weight_decay)
    raise EvofoolError(f"unknown optimizer {s.optimizer!r}: choose sgd or adam")


def _lr_factor(schedule: str, step: int, total: int) -> float:
    """Learning-rate multiplier at ``step`` of ``total``, with a short linear warm-up."""
    warmup = max(1, total // 50)
    if step < warmup:
        return (step + 1) / warmup
    if schedule == "constant":
        return 1.0
    if schedule == "cosine":
        return 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, total - warmup)))
    if schedule == "step":
        return 0.1 ** int(3 * step / total)
    raise EvofoolError(f"unknown schedule {schedule!r}: choose cosine, step or constant")


@dataclass
class TrainResult:
    """A trained model and what happened while training it."""

    model: Classifier
    history: list[dict[str, float]]
    test_accuracy: float
    train_seconds: float
    resumed_from_epoch: int


def train_classifier(
    arch: str,
    data: Mapping[str, Any],
    settings: TrainSettings,
    *,
    seed: int,
    width: float = 1.0,
    device: torch.device | str = "cpu",
    checkpoint: str | Path | None = None,
    log: Logger = print,
) -> TrainResult:
    """Train ``arch`` on a prepared dataset, checkpointing after every epoch.

    Randomness (initial weights, dropout, shuffling, augmentation) comes from ``seed`` alone, so
    two runs with the same seed give the same weights on the CPU, and on one GPU with the
    deterministic kernels that :func:`~evofool.devices.configure_cuda` asks for (called here).
    When ``checkpoint`` names a file from an earlier, interrupted run with the same settings on
    the same kind of device, training resumes after its last finished epoch and ends with the
    same weights as an uninterrupted run.
    """
    device = torch.device(device)
    if device.type == "cuda":
        configure_cuda()
    mixed = _mixed_precision(settings.precision, device)
    x_train, y_train = data["x_train"], data["y_train"]
    mean, std = data_normalization(arch, x_train)
    spec = ModelSpec(arch, tuple(x_train.shape[1:]), len(data["classes"]), width, mean, std)
    # A run resumes only on the kind of device it started on: another one does other arithmetic.
    fingerprint = {
        "settings": asdict(settings),
        "spec": spec.to_dict(),
        "seed": seed,
        "device": device_identity(device),
    }
    n = len(y_train)
    steps_per_epoch = math.ceil(n / settings.batch_size)
    total_steps = settings.epochs * steps_per_epoch
    # The training images go to the device once (uint8), not batch by batch.
    x_dev, y_dev = x_train.to(device), y_train.to(device)
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(seed)
        model = build_model(spec).to(device)
        if mixed:
            model = model.to(memory_format=torch.channels_last)
        opt = _make_optimizer(model, settings)
        gen = torch.Generator().manual_seed(seed)
        history: list[dict[str, float]] = []
        start_epoch, elapsed = 0, 0.0
        state = _load_checkpoint(checkpoint, fingerprint)
        if state is not None:
            model.load_state_dict(state["model"])
            opt.load_state_dict(state["optimizer"])
            gen.set_state(state["generator"])
            torch.set_rng_state(state["torch_rng"])
            if device.type == "cuda":  # dropout draws from the GPU's generator there
                torch.cuda.set_rng_state(state["cuda_rng"], device)
            history, start_epoch, elapsed = state["history"], state["epoch"], state["elapsed"]
            log(f"resumed from checkpoint after epoch {start_epoch}")
        for epoch in range(start_epoch, settings.epochs):
            t0 = time.perf_counter()
            model.train()
            order = torch.randperm(n, generator=gen)
            # Summed where the network runs and read once an epoch: reading them every step
            # would wait for the GPU at every step. float64, as Python's floats were.
            loss_sum = torch.zeros((), dtype=torch.float64, device=device)
            correct = torch.zeros((), dtype=torch.long, device=device)
            for b in range(steps_per_epoch):
                idx = order[b * settings.batch_size : (b + 1) * settings.batch_size].to(device)
                xb = augment_batch(to_float(x_dev[idx]), settings.augment, gen)
                if mixed:
                    xb = xb.contiguous(memory_format=torch.channels_last)
                yb = y_dev[idx]
                factor = _lr_factor(settings.schedule, epoch * steps_per_epoch + b, total_steps)
                for group in opt.param_groups:
                    group["lr"] = settings.lr * factor
                with torch.autocast(device.type, dtype=torch.bfloat16, enabled=mixed):
                    logits = model(xb)
                loss = F.cross_entropy(logits.float(), yb, label_smoothing=settings.label_smoothing)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                loss_sum += loss.detach().double() * len(idx)
                correct += (logits.argmax(1) == yb).sum()
            test_acc = accuracy(model, data["x_test"], data["y_test"])
            elapsed += time.perf_counter() - t0
            row = {
                "epoch": epoch + 1,
                "loss": loss_sum.item() / n,
                "train_accuracy": correct.item() / n,
                "test_accuracy": test_acc,
                "seconds": elapsed,
            }
            history.append(row)
            log(
                f"epoch {epoch + 1}/{settings.epochs}  loss {row['loss']:.4f}  "
                f"train acc {row['train_accuracy']:.4f}  test acc {test_acc:.4f}  "
                f"time {elapsed:.1f}s"
            )
            if checkpoint is not None:
                _save_checkpoint(checkpoint, fingerprint, model, opt, gen, history, elapsed)
    model.eval()
    final = (
        history[-1]["test_accuracy"] if history else accuracy(model, data["x_test"], data["y_test"])
    )
    return TrainResult(model, history, final, elapsed, start_epoch)


def _mixed_precision(precision: str, device: torch.device) -> bool:
    """Whether training runs its forward and backward passes in bfloat16 autocast.

    bfloat16 keeps float32 weights, optimiser and loss, and runs the convolutions in bfloat16
    on channels-last tensors: 2-3x the float32 speed on a CPU with AVX-512 BF16 or AMX, and on
    a GPU with bfloat16 units. float32 is the exact, unchanged path.
    """
    if precision not in PRECISIONS:
        raise EvofoolError(f"unknown precision {precision!r}: choose one of {PRECISIONS}")
    if precision == "bfloat16" and not has_bfloat16_units(device):
        raise EvofoolError(
            "precision bfloat16 needs a GPU with bfloat16 units (Ampere or later); "
            "train in float32 on this GPU"
        )
    return precision == "bfloat16"


def _save_checkpoint(path, fingerprint, model, opt, gen, history, elapsed) -> None:
    device = next(model.parameters()).device
    save_artifact(
        {
            "fingerprint": fingerprint,
            "model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
            "optimizer": opt.state_dict(),
            "generator": gen.get_state(),
            "torch_rng": torch.get_rng_state(),
            "cuda_rng": torch.cuda.get_rng_state(device) if device.type == "cuda" else None,
            "history": history,
            "epoch": len(history),
            "elapsed": elapsed,
        },
        path,
    )


def _load_checkpoint(path: str | Path | None, fingerprint: dict) -> dict | None:
    """A checkpoint of the same run, or None (absent, unreadable, or from other settings)."""
    if path is None or not Path(path).exists():
        return None
    try:
        state = load_artifact(path)
    except EvofoolError:
        return None
    return state if state.get("fingerprint") == fingerprint else None
