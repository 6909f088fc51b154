"""Variation and colour operators shared by the encodings: polynomial mutation, HSV to RGB."""

from __future__ import annotations

import math

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

    Only the chosen genes are drawn and computed (:func:`bernoulli_positions`), in float32 for
    float32 input (float64 for float64), with squarings and square roots when ``eta + 1`` is a
    power of two, as it is for the paper's ``eta`` 15.

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
    out = x.clone()
    flat = out.view(-1)
    positions = bernoulli_positions(flat.numel(), rate, generator=generator, device=x.device)
    if positions.numel() == 0:
        return out
    work = torch.float64 if x.dtype == torch.float64 else torch.float32
    chosen = flat[positions].to(work)
    u = torch.rand(chosen.shape, generator=generator, device=x.device, dtype=work)
    span = high - low
    # The two branches are one formula: with s = sign(0.5 - u), v = 0.5 - |u - 0.5| (u below
    # 0.5, 1 - u above) and d the distance to the bound the gene moves away from (d1 or d2),
    # delta_q = s ((2v + (1 - 2v) (1 - d)^(eta + 1))^(1 / (eta + 1)) - 1).
    sign = torch.sign(0.5 - u)
    v = (u - 0.5).abs_().neg_().add_(0.5)
    distance = ((chosen - low) / span - 0.5).mul_(sign).add_(0.5).clamp_(0.0, 1.0)
    base = _power(1.0 - distance, eta + 1.0).mul_(1.0 - 2.0 * v).add_(2.0 * v).clamp_min_(0.0)
    delta = _root(base, eta + 1.0).sub_(1.0).mul_(sign)
    flat[positions] = chosen.add_(delta.mul_(span)).clamp_(low, high).to(x.dtype)
    return out


def bernoulli_positions(
    n: int, rate: float, *, generator: torch.Generator, device: torch.device | str = "cpu"
) -> torch.Tensor:
    """Indices in ``range(n)``, each present independently with probability ``rate``.

    The same distribution as ``torch.nonzero(torch.rand(n) < rate)``, drawn as the gaps
    between successes of the Bernoulli process (geometric with parameter ``rate``): about
    ``n * rate`` random numbers instead of ``n``, which is what makes a low mutation rate cheap.

    Returns:
        Ascending int64 indices on ``device``.
    """
    if rate <= 0.0 or n == 0:
        return torch.empty(0, dtype=torch.long, device=device)
    if rate >= 1.0:
        return torch.arange(n, device=device)
    log_keep = math.log1p(-rate)
    expected = n * rate
    draws = int(expected + 6.0 * math.sqrt(expected * (1.0 - rate)) + 16)
    found: list[torch.Tensor] = []
    last = -1
    while True:
        u = torch.rand(draws, generator=generator, dtype=torch.float64, device=device)
        gaps = torch.log1p(-u).div_(log_keep).floor_().clamp_(max=n).long().add_(1)
        positions = gaps.cumsum_(0).add_(last)
        inside = int((positions < n).sum())  # positions ascend: the first `inside` are in range
        found.append(positions[:inside])
        if inside < positions.numel():
            break
        last = int(positions[-1])
    return torch.cat(found)


def _power_of_two_exponent(p: float) -> int | None:
    """``k`` if ``p == 2**k`` for a small whole ``k >= 0``, else ``None``."""
    for k in range(11):
        if p == float(2**k):
            return k
    return None


def _power(y: torch.Tensor, p: float) -> torch.Tensor:
    """``y ** p``, by repeated squaring when ``p`` is a power of two (``eta`` 15: ``p`` 16)."""
    k = _power_of_two_exponent(p)
    if k is None:
        return y.pow(p)
    for _ in range(k):
        y = y * y
    return y


def _root(y: torch.Tensor, p: float) -> torch.Tensor:
    """``y ** (1 / p)`` for ``y >= 0``, by repeated square roots when ``p`` is a power of two."""
    k = _power_of_two_exponent(p)
    if k is None:
        return y.pow(1.0 / p)
    y = y.clone()
    for _ in range(k):
        y.sqrt_()
    return y


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


def quantize_(images: torch.Tensor) -> torch.Tensor:
    """In-place :func:`quantize` (the same operations, so the same results)."""
    return images.clamp_(0.0, 1.0).mul_(255.0).round_().div_(255.0)
