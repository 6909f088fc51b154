"""The obvious CPPN renderer: one genome at a time, one node at a time, by recursion.

The tests check the library's batched renderer against it, and ``benchmarks/fooling.py`` times
the batched renderer against it; it lives here so that there is exactly one.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from evofool.evolution import CPPNGenome, activate, cppn_inputs


def reference_render(genome: CPPNGenome, height: int, width: int) -> torch.Tensor:
    """Raw outputs ``(n_outputs, height, width)`` of one genome, no batching and no layers.

    A node's value at every pixel is its activation of the sum, in edge-list order, of its
    incoming edges' weight times the source's value; values are computed on demand by recursion
    from the outputs and remembered. It uses the library's inputs and activations (each is
    checked on its own in the tests): with weights up to 10 and chains of sines, a one-ulp
    difference anywhere can grow to 1e-3 at the output.
    """
    inputs = list(cppn_inputs(height, width))
    incoming: dict[int, list[tuple[int, float]]] = {}
    for src, tgt, w in zip(
        genome.sources.tolist(), genome.targets.tolist(), genome.weights.tolist(), strict=True
    ):
        incoming.setdefault(tgt, []).append((src, w))
    memo: dict[int, torch.Tensor] = {}

    def value(node: int) -> torch.Tensor:
        if node < len(inputs):
            return inputs[node]
        if node not in memo:
            total = torch.zeros(height * width)
            for src, w in incoming.get(node, []):
                total = total + value(src) * w
            memo[node] = activate(int(genome.activations[node]), total)
        return memo[node]

    outputs = [value(len(inputs) + c) for c in range(genome.n_outputs)]
    return torch.stack(outputs).view(genome.n_outputs, height, width)


def reference_render_all(genomes: Sequence[CPPNGenome], height: int, width: int) -> torch.Tensor:
    """:func:`reference_render` of each genome in turn, stacked to ``(P, n_outputs, H, W)``."""
    return torch.stack([reference_render(g, height, width) for g in genomes])
