"""Transfer of fooling images: images evolved against one network, scored on another (FOOL 3.5)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from evofool.evolution._archive import ClassArchive


def class_confidence(
    model: nn.Module,
    images: torch.Tensor,
    classes: Sequence[int] | torch.Tensor,
    *,
    batch_size: int = 512,
) -> torch.Tensor:
    """Softmax probability that ``model`` gives each image for its own class.

    Args:
        model: Maps ``(N, C, H, W)`` pixels in [0, 1] to logits; put in eval mode.
        images: ``(N, C, H, W)`` pixels in [0, 1].
        classes: ``(N,)`` the class each image was evolved for.
        batch_size: Images per forward pass.

    Returns:
        ``(N,)`` float32 probabilities (CPU).

    Raises:
        ValueError: If the lengths differ, ``batch_size < 1`` or a class is outside the
            model's outputs.
    """
    target = torch.as_tensor(classes, dtype=torch.long).reshape(-1)
    if images.dim() != 4 or images.shape[0] != target.numel():
        raise ValueError(
            f"images must have shape (N, C, H, W) with N = len(classes) = {target.numel()}, "
            f"got {tuple(images.shape)}"
        )
    if batch_size < 1:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    model.eval()
    first = next(model.parameters(), None)
    device = first.device if first is not None else torch.device("cpu")
    out = torch.empty(target.numel())
    with torch.no_grad():
        for start in range(0, target.numel(), batch_size):
            stop = start + batch_size
            probs = torch.softmax(model(images[start:stop].to(device)).float(), 1).cpu()
            t = target[start:stop]
            if t.numel() and (t.max() >= probs.shape[1] or t.min() < 0):
                raise ValueError(f"classes must lie in 0..{probs.shape[1] - 1}")
            out[start:stop] = probs[torch.arange(t.numel()), t]
    return out


def transfer_confidence(
    archive: ClassArchive, model: nn.Module, *, batch_size: int = 512
) -> torch.Tensor:
    """Confidence of another network in each elite's evolved class.

    The elites were evolved against network A; ``model`` is network B (same architecture and
    another seed, or another architecture on the same data). Cells that are empty in the
    archive give NaN.

    Args:
        archive: The archive evolved against network A.
        model: Network B; its outputs must include every filled class.
        batch_size: Images per forward pass.

    Returns:
        ``(n_classes,)`` float32: B's softmax probability of class ``k`` for elite ``k``.
    """
    result = torch.full((archive.n_classes,), float("nan"))
    filled = archive.filled_classes
    if filled:
        result[filled] = class_confidence(
            model, archive.images[filled], filled, batch_size=batch_size
        )
    return result
