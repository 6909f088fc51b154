"""Fitness of images an attack has already scored, so a repeated candidate costs no query.

Late in a one-pixel DE run most children repeat an image the attack has already seen: their
coordinates round to the same pixel and their colours to the same 8-bit value, or they write a
pixel's own value back. On the default MNIST LeNet at the paper's budget, 88% of the 40,400
candidates of a 1-pixel attack were repeats (``benchmarks/one_pixel.py`` measures it). Each
attack keeps the fitness of every image it has scored, keyed by the image itself, and only
new images go to the network. Decisions are unchanged: a repeated image gets the fitness it
got before, and it can never meet the early-stop rule (had it met it, the attack would have
ended there).
"""

from __future__ import annotations

import numpy as np

from evofool.attacks._genotype import Phenotype, first_occurrence


def image_keys(pheno: Phenotype, clean_values: np.ndarray, width: int) -> list[bytes]:
    """One key per candidate, equal for two candidates exactly when they make the same image.

    Keys compare candidates on the same clean image. A perturbation that writes its pixel's
    clean value, or repeats a pixel an earlier perturbation of the candidate already wrote
    (both carry the winning colour, see :func:`~evofool.attacks._genotype.phenotype`), changes
    nothing and is left out; the rest are sorted by position.

    Args:
        pheno: Phenotype of leading shape ``(R,)``.
        clean_values: uint8 ``(R, d, C)`` the clean image's colours at the candidates' pixels.
        width: Image width, to number the pixels.

    Returns:
        ``R`` byte strings.
    """
    r, d = pheno.rows.shape
    if r == 0:
        return []
    position = pheno.rows * width + pheno.cols
    drop = (pheno.values == clean_values).all(-1) | ~first_occurrence(pheno.rows, pheno.cols)
    position = np.where(drop, -1, position).astype(np.int32)
    values = np.where(drop[..., None], 0, pheno.values).astype(np.uint8)
    order = np.argsort(position, axis=1, kind="stable")
    position = np.take_along_axis(position, order, axis=1)
    values = np.take_along_axis(values, order[..., None], axis=1)
    packed = np.concatenate([position.view(np.uint8), values.reshape(r, -1)], axis=1)
    raw, size = np.ascontiguousarray(packed).tobytes(), packed.shape[1]
    return [raw[i * size : (i + 1) * size] for i in range(r)]


def split_known(
    memos: list[dict[bytes, tuple[float, float]]], keys: list[bytes], sizes: list[int]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Which candidates of a step need the network.

    The first ``sizes[0]`` candidates belong to the first attack, the next ``sizes[1]`` to the
    second, and so on; each attack's memo maps keys to ``(fitness, margin)``.

    Returns:
        ``fresh``: bool ``(R,)``, the first candidate of the step with an image its attack has
        not scored (these go to the network, in index order); ``source``: int64 ``(R,)``, for
        every candidate not in a memo, the position among the fresh ones of its image (-1 for
        memo hits); ``known``: float64 ``(R, 2)``, the fitness and margin of memo hits (NaN
        elsewhere).
    """
    total = len(keys)
    fresh = np.zeros(total, dtype=bool)
    source = np.full(total, -1, dtype=np.int64)
    known = np.full((total, 2), np.nan)
    n_fresh = 0
    start = 0
    for memo, size in zip(memos, sizes, strict=True):
        seen: dict[bytes, int] = {}
        for i in range(start, start + size):
            key = keys[i]
            hit = memo.get(key)
            if hit is not None:
                known[i] = hit
                continue
            position = seen.get(key)
            if position is None:
                position = seen[key] = n_fresh
                fresh[i] = True
                n_fresh += 1
            source[i] = position
        start += size
    return fresh, source, known
