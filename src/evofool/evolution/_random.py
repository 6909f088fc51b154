"""Seeded random streams: a NumPy and a torch generator spawned from one seed."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch


def spawn_seeds(seed: int, n: int) -> list[int]:
    """Derive ``n`` independent run seeds from one study seed with ``np.random.SeedSequence``.

    Args:
        seed: The study seed (a non-negative integer).
        n: How many child seeds to derive.

    Returns:
        ``n`` integers in ``[0, 2**63)``, each a valid ``seed`` for a run.

    Raises:
        ValueError: If ``seed`` is negative or ``n`` is negative.
    """
    if seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed}")
    if n < 0:
        raise ValueError(f"n must be non-negative, got {n}")
    children = np.random.SeedSequence(seed).spawn(n)
    return [int(c.generate_state(1, np.uint64)[0] >> np.uint64(1)) for c in children]


class Rngs:
    """The two generators a run owns: ``numpy`` for choices, ``torch`` for tensor draws.

    Both are spawned from ``np.random.SeedSequence(seed)``, so one seed fixes every random draw.
    Graph mutations and parent selection draw from :attr:`numpy`; whole-tensor draws (genes,
    mutation masks, noise) from :attr:`torch`. :meth:`state` and :meth:`set_state` capture and
    restore both, which is what makes a resumed run identical to an uninterrupted one.

    Args:
        seed: A non-negative integer.
    """

    def __init__(self, seed: int) -> None:
        if int(seed) < 0:
            raise ValueError(f"seed must be a non-negative integer, got {seed}")
        self.seed = int(seed)
        np_seq, torch_seq = np.random.SeedSequence(self.seed).spawn(2)
        self.numpy = np.random.default_rng(np_seq)
        self.torch = torch.Generator(device="cpu")
        self.torch.manual_seed(int(torch_seq.generate_state(1, np.uint64)[0]))

    def state(self) -> dict[str, Any]:
        """Both generator states as plain types and tensors (saveable with ``save_artifact``)."""
        return {
            "seed": self.seed,
            "numpy": self.numpy.bit_generator.state,
            "torch": self.torch.get_state(),
        }

    def set_state(self, state: dict[str, Any]) -> None:
        """Restore the states captured by :meth:`state`."""
        self.seed = int(state["seed"])
        self.numpy.bit_generator.state = state["numpy"]
        self.torch.set_state(state["torch"])

    def __repr__(self) -> str:
        return f"Rngs(seed={self.seed})"
