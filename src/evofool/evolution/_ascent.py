"""Fooling images by gradient ascent on a class's softmax output (FOOL Sec. 3.9; docs/method.md)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

LR_POLICIES = ("progress", "constant")


@dataclass(frozen=True)
class AscentResult:
    """What :func:`gradient_ascent` found, one row per requested class.

    Attributes:
        classes: ``(K,)`` the target classes.
        images: ``(K, C, H, W)`` the best image seen for each class, pixels in [0, 1].
        confidences: ``(K,)`` softmax probability of each best image for its class.
        final_images: ``(K, C, H, W)`` the images at the last step.
        final_confidences: ``(K,)`` their probabilities.
        thresholds: The confidence levels whose first step is logged.
        steps_to: ``(K, len(thresholds))`` first step (0-based) at which the probability
            exceeded each threshold, -1 if never.
        history: ``(steps_run, K)`` the probability at every step.
    """

    classes: torch.Tensor
    images: torch.Tensor
    confidences: torch.Tensor
    final_images: torch.Tensor
    final_confidences: torch.Tensor
    thresholds: tuple[float, ...]
    steps_to: torch.Tensor
    history: torch.Tensor


def gradient_ascent(
    model: nn.Module,
    mean_image: torch.Tensor,
    classes: Sequence[int],
    *,
    steps: int = 300,
    lr_policy: str = "progress",
    lr: float = 0.01,
    early_progress: float = 0.03,
    late_progress: float = 0.1,
    max_lr: float | None = None,
    decay: float = 0.0,
    noise_std: float = 1.0 / 255.0,
    thresholds: Sequence[float] = (0.99, 0.999, 0.9999),
    stop_at: float | None = None,
    seed: int = 0,
) -> AscentResult:
    """Maximise the softmax probability of each class in pixel space, all classes in one batch.

    Follows the authors' released script (``caffe/ascent/find_fooling_image.py``): the image is
    kept as an offset ``X`` from the mean image, starting at Gaussian noise (``noise_std``, in
    [0, 1] units; the script's std is 1 grey level). Each step clamps ``mean + X`` to [0, 1],
    does one forward and backward pass for the whole batch (image ``k`` pushes class
    ``classes[k]``), logs when each threshold is first exceeded, then takes
    ``X += lr * grad`` and the optional L2 decay ``X *= 1 - decay`` (towards the mean image;
    the script's default is 0.01, the paper shows both). The ``"progress"`` policy picks, per
    image, ``lr = min(early_progress, late_progress * (1 - p)) / |grad|^2`` so the linear
    prediction of the gain is that amount (capped by ``max_lr``); ``"constant"`` uses ``lr``.

    Args:
        model: Maps ``(N, C, H, W)`` pixels in [0, 1] to logits; set to eval mode, weights kept.
        mean_image: ``(C, H, W)`` the start image (e.g. the training set's mean), in [0, 1].
        classes: Target class of each image to produce.
        steps: Number of forward passes (the script: 300).
        lr_policy: ``"progress"`` (the script's default) or ``"constant"``.
        lr: Step size of the ``"constant"`` policy.
        early_progress: Largest predicted gain per step of the ``"progress"`` policy.
        late_progress: Fraction of the remaining gap ``1 - p`` to aim for per step.
        max_lr: Optional cap on the ``"progress"`` step size.
        decay: L2 decay per step in [0, 1).
        noise_std: Standard deviation of the starting noise.
        thresholds: Confidence levels whose first step is logged.
        stop_at: Stop early once every class has exceeded this probability (``None``: run all
            ``steps``, as the script does).
        seed: Seed of the starting noise.

    Returns:
        An :class:`AscentResult`.

    Raises:
        ValueError: On a bad argument, naming it.
    """
    if steps < 1:
        raise ValueError(f"steps must be positive, got {steps}")
    if lr_policy not in LR_POLICIES:
        raise ValueError(f"lr_policy must be one of {LR_POLICIES}, got {lr_policy!r}")
    if not 0.0 <= decay < 1.0:
        raise ValueError(f"decay must be in [0, 1), got {decay}")
    if noise_std < 0:
        raise ValueError(f"noise_std must be >= 0, got {noise_std}")
    if lr <= 0 or early_progress <= 0 or late_progress <= 0:
        raise ValueError("lr, early_progress and late_progress must be positive")
    if max_lr is not None and max_lr <= 0:
        raise ValueError(f"max_lr must be positive or None, got {max_lr}")
    if mean_image.dim() != 3:
        raise ValueError(f"mean_image must have shape (C, H, W), got {tuple(mean_image.shape)}")
    if len(classes) == 0:
        raise ValueError("classes must name at least one class")
    if seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed}")
    levels = tuple(float(t) for t in thresholds)

    model.eval()
    first = next(model.parameters(), None)
    device = first.device if first is not None else torch.device("cpu")
    target = torch.as_tensor(list(classes), dtype=torch.long)
    k = target.numel()
    mean = mean_image.detach().to(device, torch.float32).unsqueeze(0)
    generator = torch.Generator().manual_seed(int(seed))
    offset = (torch.randn((k, *mean_image.shape), generator=generator) * noise_std).to(device)
    rows = torch.arange(k, device=device)
    target_d = target.to(device)

    best_p = torch.full((k,), -1.0)
    # The best images stay on the network's device: one copy at the end, not one a step.
    best_x = torch.zeros((k, *mean_image.shape), device=device)
    steps_to = torch.full((k, len(levels)), -1, dtype=torch.long)
    history = []
    for step in range(steps):
        image = (offset + mean).clamp(0.0, 1.0)
        offset = image - mean
        image = image.detach().requires_grad_(True)
        probs = torch.softmax(model(image).float(), dim=1)
        if target.max() >= probs.shape[1] or target.min() < 0:
            raise ValueError(f"classes must lie in 0..{probs.shape[1] - 1}, got {list(classes)}")
        p = probs[rows, target_d]
        (grad,) = torch.autograd.grad(p.sum(), image)
        p_cpu = p.detach().cpu()
        history.append(p_cpu)
        better = p_cpu > best_p
        best_p = torch.where(better, p_cpu, best_p)
        best_x = torch.where(better.to(device)[:, None, None, None], image.detach(), best_x)
        for j, level in enumerate(levels):
            newly = (p_cpu > level) & (steps_to[:, j] < 0)
            steps_to[newly, j] = step
        if stop_at is not None and bool((p_cpu > stop_at).all()):
            break
        if step == steps - 1:
            break
        if lr_policy == "progress":
            sq = grad.flatten(1).pow(2).sum(1)
            desired = torch.minimum(
                torch.full_like(p, early_progress), late_progress * (1.0 - p.detach())
            )
            step_lr = torch.where(sq > 0, desired / sq.clamp_min(1e-30), torch.zeros_like(sq))
            if max_lr is not None:
                step_lr = step_lr.clamp_max(max_lr)
        else:
            step_lr = torch.full((k,), lr, device=device)
        offset = offset + step_lr.view(-1, 1, 1, 1) * grad
        offset = offset * (1.0 - decay)

    final = image.detach().cpu()
    return AscentResult(
        classes=target,
        images=best_x.cpu(),
        confidences=best_p,
        final_images=final,
        final_confidences=history[-1],
        thresholds=levels,
        steps_to=steps_to,
        history=torch.stack(history, 0),
    )
