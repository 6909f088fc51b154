"""Direct encoding: one gene per pixel and channel, polynomial mutation (FOOL)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from evofool.evolution._operators import hsv_to_rgb, polynomial_mutation, quantize, quantize_
from evofool.evolution._random import Rngs

COLORS = ("gray", "hsv")


class DirectEncoding:
    """Images encoded directly, one real-valued gene in [0, 255] per pixel and channel.

    Grayscale genomes have one channel (MNIST, 28 x 28); HSV genomes have three (hue,
    saturation, value; ImageNet, 256 x 256) and are converted to RGB for the network. Genes
    start uniform in [0, 255]; each gene of a child mutates with probability ``mutation_rate``
    (0.1) by bounded polynomial mutation with ``eta`` 15 (Nguyen et al. 2015, Sec. 2.2). The
    paper halves the rate every 1000 generations; the released code keeps it constant, which is
    the default here (``halving_period=None``). A population is one tensor, so sampling,
    mutation and rendering are single tensor operations over the whole batch.

    Rendered pixels are whole 8-bit levels (genes are rounded, HSV is converted and the RGB is
    rounded again), so an image written to PNG scores exactly what evolution scored.

    Args:
        height: Image height in pixels.
        width: Image width in pixels.
        color: ``"gray"`` (1 channel) or ``"hsv"`` (3 genes per pixel, rendered as RGB).
        mutation_rate: Probability that each gene of a child mutates, in [0, 1].
        eta: Distribution index of the polynomial mutation.
        halving_period: If given, the mutation rate halves every ``halving_period``
            generations (the paper: 1000); ``None`` keeps it constant (the released code).
    """

    # Fooling-section settings the study builds it from (evofool.fooling.make_encoding).
    SETTING_KEYS = ("color", "mutation_rate", "halving_period")

    name = "direct"

    def __init__(
        self,
        height: int = 28,
        width: int = 28,
        *,
        color: str = "gray",
        mutation_rate: float = 0.1,
        eta: float = 15.0,
        halving_period: int | None = None,
    ) -> None:
        if height < 1 or width < 1:
            raise ValueError(f"height and width must be positive, got {height} x {width}")
        if color not in COLORS:
            raise ValueError(f"color must be one of {COLORS}, got {color!r}")
        if not 0.0 <= mutation_rate <= 1.0:
            raise ValueError(f"mutation_rate must be in [0, 1], got {mutation_rate}")
        if eta < 0:
            raise ValueError(f"eta must be >= 0, got {eta}")
        if halving_period is not None and halving_period < 1:
            raise ValueError(
                f"halving_period must be a positive integer or None, got {halving_period}"
            )
        self.height = int(height)
        self.width = int(width)
        self.color = color
        self.mutation_rate = float(mutation_rate)
        self.eta = float(eta)
        self.halving_period = None if halving_period is None else int(halving_period)

    @property
    def channels(self) -> int:
        """Genes per pixel: 1 for grayscale, 3 for HSV."""
        return 1 if self.color == "gray" else 3

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """Shape ``(C, H, W)`` of one rendered image."""
        return (self.channels, self.height, self.width)

    def rate_at(self, generation: int) -> float:
        """Per-gene mutation rate used to make the children of ``generation``."""
        if self.halving_period is None:
            return self.mutation_rate
        return self.mutation_rate * 0.5 ** (generation // self.halving_period)

    def random(self, n: int, rngs: Rngs) -> torch.Tensor:
        """Draw ``n`` genomes with genes uniform in [0, 255].

        Returns:
            ``(n, C, H, W)`` float32 genes.
        """
        if n < 1:
            raise ValueError(f"n must be positive, got {n}")
        return torch.rand((n, *self.image_shape), generator=rngs.torch) * 255.0

    def mutate(self, parents: torch.Tensor, *, generation: int, rngs: Rngs) -> torch.Tensor:
        """Return mutated copies of ``parents`` (``(n, C, H, W)``); the parents are unchanged."""
        return polynomial_mutation(
            parents,
            low=0.0,
            high=255.0,
            eta=self.eta,
            rate=self.rate_at(generation),
            generator=rngs.torch,
        )

    def render(self, genomes: torch.Tensor) -> torch.Tensor:
        """Turn ``(n, C, H, W)`` genes into ``(n, C, H, W)`` pixels in [0, 1] (RGB for HSV)."""
        if genomes.dim() != 4 or tuple(genomes.shape[1:]) != self.image_shape:
            raise ValueError(
                f"genomes must have shape (n, {', '.join(map(str, self.image_shape))}), "
                f"got {tuple(genomes.shape)}"
            )
        pixels = quantize_(genomes / 255.0)  # one new tensor, then in place
        if self.color == "hsv":
            pixels = quantize(hsv_to_rgb(pixels))
        return pixels

    def stack(self, genomes: Sequence[torch.Tensor]) -> torch.Tensor:
        """Stack single genomes ``(C, H, W)`` into a population ``(n, C, H, W)``."""
        return torch.stack(list(genomes), 0)

    def take(self, genomes: Sequence[torch.Tensor], index: np.ndarray) -> torch.Tensor:
        """The population ``(len(index), C, H, W)`` of ``genomes[i]`` for each ``i`` in ``index``.

        The few distinct genomes are stacked once and then gathered, which is cheaper than
        stacking one tensor per pick.
        """
        return self.stack(genomes)[torch.from_numpy(np.asarray(index, dtype=np.int64))]

    def genome_to_state(self, genome: torch.Tensor) -> torch.Tensor:
        """A saveable copy of one genome."""
        return genome.detach().clone()

    def genome_from_state(self, state: Any) -> torch.Tensor:
        """Inverse of :meth:`genome_to_state`."""
        return torch.as_tensor(state, dtype=torch.float32).clone()

    def spec(self) -> dict[str, Any]:
        """Everything needed to rebuild this encoding (plain types)."""
        return {
            "name": self.name,
            "height": self.height,
            "width": self.width,
            "color": self.color,
            "mutation_rate": self.mutation_rate,
            "eta": self.eta,
            "halving_period": self.halving_period,
        }

    def __repr__(self) -> str:
        return (
            f"DirectEncoding(height={self.height}, width={self.width}, color={self.color!r}, "
            f"mutation_rate={self.mutation_rate}, eta={self.eta}, "
            f"halving_period={self.halving_period})"
        )
