"""Candidate encoding and the search operators of the one-pixel attack, in NumPy.

A *genotype* is a float64 array of shape ``(..., d, 2 + C)``: for each of the ``d`` perturbations
the column ``x``, the row ``y`` and ``C`` colour values in [0, 255]. Its bounds are
``x in [0, W]``, ``y in [0, H]`` and colours in [0, 255]; the DE clamps children to them.

A *phenotype* is what the genotype writes into an image: integer rows and columns (rounded to
the nearest integer, ties to even, then clamped to ``[0, H - 1]`` / ``[0, W - 1]``) and 8-bit
colours (rounded, clamped to [0, 255]). When two perturbations of one candidate land on the same
pixel, the later one wins; the phenotype stores the winning colour for both, so writing them in
any order gives the same image.

Every random draw takes an explicit :class:`numpy.random.Generator`; the order of the draws is
part of the method (see :mod:`evofool.attacks._one_pixel`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Phenotype:
    """Pixels a batch of candidates writes.

    Attributes:
        rows: int64 ``(..., d)`` pixel rows in ``[0, H - 1]``.
        cols: int64 ``(..., d)`` pixel columns in ``[0, W - 1]``.
        values: uint8 ``(..., d, C)`` colours in 0-255 (the later perturbation's colour when two
            perturbations share a pixel).
    """

    rows: np.ndarray
    cols: np.ndarray
    values: np.ndarray

    def __getitem__(self, index: object) -> Phenotype:
        """Select candidates along the leading axes."""
        return Phenotype(self.rows[index], self.cols[index], self.values[index])

    def same_as(self, other: Phenotype) -> np.ndarray:
        """Whether each candidate writes exactly the same pixels as in ``other``.

        Args:
            other: Phenotype of the same leading shape.

        Returns:
            bool ``(...)``: True where positions and colours all agree.
        """
        return (
            (self.rows == other.rows).all(-1)
            & (self.cols == other.cols).all(-1)
            & (self.values == other.values).all((-2, -1))
        )


def gene_bounds(height: int, width: int, channels: int) -> tuple[np.ndarray, np.ndarray]:
    """Lower and upper bounds of one perturbation's genes ``(x, y, c_1..c_C)``.

    Returns:
        Two float64 arrays of shape ``(2 + C,)``.
    """
    lower = np.zeros(2 + channels)
    upper = np.array([float(width), float(height)] + [255.0] * channels)
    return lower, upper


def initial_population(
    rng: np.random.Generator, popsize: int, pixels: int, height: int, width: int, channels: int
) -> np.ndarray:
    """The paper's initial population.

    Draws, in this order: ``x ~ U(0, W)`` of shape ``(P, d)``, ``y ~ U(0, H)`` of shape
    ``(P, d)``, colours ``~ N(128, 127)`` of shape ``(P, d, C)`` clipped to [0, 255].

    Returns:
        float64 genotype ``(P, d, 2 + C)``.
    """
    x = rng.uniform(0.0, float(width), size=(popsize, pixels))
    y = rng.uniform(0.0, float(height), size=(popsize, pixels))
    colours = np.clip(rng.normal(128.0, 127.0, size=(popsize, pixels, channels)), 0.0, 255.0)
    return np.concatenate([x[..., None], y[..., None], colours], axis=-1)


def random_candidates(
    rng: np.random.Generator, popsize: int, pixels: int, height: int, width: int, channels: int
) -> np.ndarray:
    """Uniformly random pixels and colours, the random-search baseline (OPA Table VII).

    Draws, in this order: columns ``~ U{0..W-1}`` ``(P, d)``, rows ``~ U{0..H-1}`` ``(P, d)``,
    colours ``~ U{0..255}`` ``(P, d, C)``.

    Returns:
        float64 genotype ``(P, d, 2 + C)`` holding integers.
    """
    x = rng.integers(0, width, size=(popsize, pixels))
    y = rng.integers(0, height, size=(popsize, pixels))
    colours = rng.integers(0, 256, size=(popsize, pixels, channels))
    return np.concatenate([x[..., None], y[..., None], colours], axis=-1).astype(np.float64)


def distinct_indices(rng: np.random.Generator, popsize: int) -> np.ndarray:
    """For each ``i``, three indices ``r1, r2, r3`` distinct from each other and from ``i``.

    Each is uniform over the indices still allowed: draws ``a ~ U{0..P-2}``, ``b ~ U{0..P-3}``,
    ``c ~ U{0..P-4}`` (three calls of shape ``(P,)``, in this order) and maps each to the a-th
    (b-th, c-th) index of ``0..P-1`` left after removing the excluded ones.

    Returns:
        int64 ``(P, 3)``.
    """
    if popsize < 4:
        raise ValueError(f"popsize must be at least 4 for DE/rand/1, got {popsize}")
    i = np.arange(popsize)
    r1 = rng.integers(0, popsize - 1, size=popsize)
    r1 = r1 + (r1 >= i)
    r2 = rng.integers(0, popsize - 2, size=popsize)
    for e in np.sort(np.stack([i, r1]), axis=0):
        r2 = r2 + (r2 >= e)
    r3 = rng.integers(0, popsize - 3, size=popsize)
    for e in np.sort(np.stack([i, r1, r2]), axis=0):
        r3 = r3 + (r3 >= e)
    return np.stack([r1, r2, r3], axis=1)


def de_children(
    rng: np.random.Generator,
    population: np.ndarray,
    mutation: float,
    lower: np.ndarray,
    upper: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """DE/rand/1 without crossover: ``child_i = x_r1 + F (x_r2 - x_r3)``, clamped to the bounds.

    Args:
        rng: The attack's generator (one :func:`distinct_indices` draw).
        population: float64 genotype ``(P, d, 2 + C)``; not modified.
        mutation: The scale ``F``.
        lower: ``(2 + C,)`` lower gene bounds.
        upper: ``(2 + C,)`` upper gene bounds.

    Returns:
        Children ``(P, d, 2 + C)`` and the indices ``(P, 3)`` they were made from.
    """
    r = distinct_indices(rng, population.shape[0])
    children = population[r[:, 0]] + mutation * (population[r[:, 1]] - population[r[:, 2]])
    np.clip(children, lower, upper, out=children)
    return children, r


def phenotype(genotype: np.ndarray, height: int, width: int) -> Phenotype:
    """Round and clamp genotypes to the pixels they write; the later perturbation wins a pixel.

    Args:
        genotype: float ``(..., d, 2 + C)``.
        height: Image height ``H``.
        width: Image width ``W``.

    Returns:
        The :class:`Phenotype` of leading shape ``(...)``.
    """
    cols = np.clip(np.rint(genotype[..., 0]), 0, width - 1).astype(np.int64)
    rows = np.clip(np.rint(genotype[..., 1]), 0, height - 1).astype(np.int64)
    values = np.clip(np.rint(genotype[..., 2:]), 0, 255).astype(np.uint8)
    d = rows.shape[-1]
    if d > 1:
        same = (rows[..., :, None] == rows[..., None, :]) & (
            cols[..., :, None] == cols[..., None, :]
        )
        # Index of the last perturbation on the same pixel (same[j, j] is always True).
        winner = d - 1 - np.argmax(same[..., ::-1], axis=-1)
        values = np.take_along_axis(values, winner[..., None], axis=-2)
    return Phenotype(rows, cols, values)


def first_occurrence(rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """Mask of the perturbations that are the first to touch their pixel.

    Args:
        rows: int ``(..., d)``.
        cols: int ``(..., d)``.

    Returns:
        bool ``(..., d)``; summing it counts the distinct perturbed pixels.
    """
    same = (rows[..., :, None] == rows[..., None, :]) & (cols[..., :, None] == cols[..., None, :])
    earlier = np.tril(np.ones(same.shape[-2:], dtype=bool), k=-1)
    return ~(same & earlier).any(-1)
