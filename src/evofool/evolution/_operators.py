"""Variation and colour operators shared by the encodings: polynomial mutation, HSV to RGB."""

from __future__ import annotations

import torch


def polynomial_mutation(
    x: torch.Tensor,
    *,
    low: float,
    high: float,
    eta: float = 15.0,
    rate: float = 0.1,
    generator: torch.Generator,
) -> torch.Tensor:
    """Deb's bounded polynomial mutation, applied gene by gene to a whole tensor.

    Each gene is chosen with probability ``rate``; a chosen gene ``x`` moves by
    ``delta_q * (high - low)`` with ``u ~ U[0, 1)`` and, for ``d1 = (x - low) / (high - low)``,
    ``d2 = (high - x) / (high - low)``, ``a = 1 / (eta + 1)``::

        u < 0.5:  delta_q = (2u + (1 - 2u) (1 - d1)^(eta + 1))^a - 1
        u >= 0.5: delta_q = 1 - (2(1 - u) + 2(u - 0.5) (1 - d2)^(eta + 1))^a

    (Deb and Goyal 1996; the bounded form of NSGA-II's code). A mutated gene therefore never
    leaves ``[low, high]``; far from the bounds its mean change is zero and its mean absolute
    change is ``(high - low) / (eta + 2)``, so a larger ``eta`` gives smaller steps. The released
    fooling code (Sferes ``evo_float``) uses the simpler unbounded form followed by clipping;
    the two agree away from the bounds.

    Args:
        x: Genes of any shape, every value in ``[low, high]``. Not modified.
        low: Lower bound of every gene.
        high: Upper bound of every gene (``> low``).
        eta: Distribution index (the paper's "mutation strength", 15); must be ``>= 0``.
        rate: Probability that each gene mutates, in ``[0, 1]``.
        generator: The torch generator that draws the mask and the ``u`` values.

    Returns:
        A new tensor of ``x``'s shape and dtype.

    Raises:
        ValueError: If ``low >= high``, ``eta < 0`` or ``rate`` is outside ``[0, 1]``.
    """
    if not low < high:
        raise ValueError(f"low must be below high, got low={low}, high={high}")
    if eta < 0:
        raise ValueError(f"eta must be >= 0, got {eta}")
    if not 0.0 <= rate <= 1.0:
        raise ValueError(f"rate must be in [0, 1], got {rate}")
    if x.numel() == 0:
        return x.clone()
    mask = torch.rand(x.shape, generator=generator, device=x.device) < rate
    chosen = x[mask].to(torch.float64)  # only the chosen genes are computed (memory)
    u = torch.rand(chosen.shape, generator=generator, device=x.device, dtype=torch.float64)
    span = high - low
    d1 = ((chosen - low) / span).clamp(0.0, 1.0)
    d2 = ((high - chosen) / span).clamp(0.0, 1.0)
    power = 1.0 / (eta + 1.0)
    lower = 2.0 * u + (1.0 - 2.0 * u) * (1.0 - d1) ** (eta + 1.0)
    upper = 2.0 * (1.0 - u) + 2.0 * (u - 0.5) * (1.0 - d2) ** (eta + 1.0)
    delta = torch.where(
        u < 0.5,
        lower.clamp_min(0.0) ** power - 1.0,
        1.0 - upper.clamp_min(0.0) ** power,
    )
    out = x.clone()
    out[mask] = (chosen + delta * span).clamp(low, high).to(x.dtype)
    return out


def hsv_to_rgb(hsv: torch.Tensor) -> torch.Tensor:
    """Convert HSV to RGB, all channels in [0, 1] (hue 1.0 wraps to 0.0).

    Args:
        hsv: ``(N, 3, H, W)`` hue, saturation, value.

    Returns:
        ``(N, 3, H, W)`` red, green, blue.

    Raises:
        ValueError: If ``hsv`` is not 4-D with 3 channels.
    """
    if hsv.dim() != 4 or hsv.shape[1] != 3:
        raise ValueError(f"hsv must have shape (N, 3, H, W), got {tuple(hsv.shape)}")
    h, s, v = hsv.unbind(1)
    h6 = h * 6.0
    vs = v * s
    # Channel = v - v s clip(min(k, 4 - k), 0, 1) with k = (n + 6 h) mod 6, n = 5, 3, 1 for R, G, B.
    channels = []
    for n in (5.0, 3.0, 1.0):
        k = torch.remainder(h6 + n, 6.0)
        channels.append(v - vs * torch.minimum(k, 4.0 - k).clamp(0.0, 1.0))
    return torch.stack(channels, 1)


def quantize(images: torch.Tensor) -> torch.Tensor:
    """Round [0, 1] pixels to whole 8-bit levels ``k / 255`` (what a PNG would store)."""
    return (images.clamp(0.0, 1.0) * 255.0).round() / 255.0
